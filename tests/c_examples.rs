//! Builds the programs in c_examples/ the way a C user would (`cc -std=c99 -Wall
//! -Wextra -Werror -pedantic -O2 -Iinclude`, linked against the built libparfor.so
//! and, separately, libparfor.a), runs them, and checks their exit status and the
//! lines that report their own checks against a serial reference.

mod common;

use std::path::PathBuf;

use common::{compile_c, require, root, run_stdout, scratch, Link, STRICT_C99};

/// Compiles c_examples/<name>.c linked as `link` and returns the executable.
fn build(name: &str, link: Link) -> PathBuf {
    require("cc", "gcc");
    let dir = scratch(&format!("c_examples/{link:?}"));
    let exe = dir.join(name);
    let source = root().join("c_examples").join(format!("{name}.c"));
    compile_c("cc", &[source], &exe, STRICT_C99, link);
    exe
}

fn assert_contains(output: &str, needle: &str) {
    assert!(
        output.contains(needle),
        "expected {needle:?} in the output:\n{output}"
    );
}

fn check_hello_for(link: Link) {
    let exe = build("hello_for", link);
    // An explicit team size, so the reported size does not depend on the machine.
    let out = run_stdout(&exe, &[], &[("PARFOR_NUM_THREADS", "3")]);
    assert_contains(&out, "team of 3 threads");
    assert_contains(&out, "thread indices used: 0");
    assert_contains(&out, "hello_for: 1000003 elements ok");
    let version = format!("parfor {}:", env!("CARGO_PKG_VERSION"));
    assert_contains(&out, &version);
}

/// The dtype lines reduce.c prints, one per dtype, each ending in "ok".
const REDUCE_DTYPES: [&str; 10] = [
    "float", "double", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
];

/// reduce.c makes about a thousand parallel calls; with the default wait policy each
/// leaves the workers spinning for a while, which on a loaded 2-core CI machine running
/// other tests steals the CPU the next call needs. Parked workers cost nothing.
const PASSIVE: (&str, &str) = ("PARFOR_WAIT_POLICY", "passive");

fn check_reduce_output(out: &str) {
    for dtype in REDUCE_DTYPES {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(dtype))
            .unwrap_or_else(|| panic!("no line for {dtype} in:\n{out}"));
        assert!(line.ends_with(": ok"), "{dtype} failed: {line}\n{out}");
    }
    // 9 operators on the 8 integer dtypes, 6 on the 2 float ones, on 3 data sets with
    // 3 option sets each.
    assert_contains(out, "reduce: all 756 reductions match the serial reference");
    // The documented error case, with its detail from parfor_last_error().
    assert_contains(out, "BIT_AND on double -> status 2:");
    assert_contains(
        out,
        "parfor_last_error(): PARFOR_BIT_AND is not defined for PARFOR_F64",
    );
}

#[test]
fn hello_for_shared() {
    check_hello_for(Link::Shared);
}

#[test]
fn hello_for_static() {
    check_hello_for(Link::Static);
}

#[test]
fn reduce_shared() {
    let exe = build("reduce", Link::Shared);
    // The default size (2^18 + 3) makes every dtype go through the whole team.
    check_reduce_output(&run_stdout(
        &exe,
        &[],
        &[("PARFOR_NUM_THREADS", "2"), PASSIVE],
    ));
    // Sizes where the partition has a single short block; 0 checks PARFOR_ERR_EMPTY
    // for MIN, MAX, argmin and argmax and the identities of the other operators.
    for n in ["1", "2", "7"] {
        check_reduce_output(&run_stdout(&exe, &[n], &[PASSIVE]));
    }
    let out = run_stdout(&exe, &["0"], &[PASSIVE]);
    assert_contains(
        &out,
        "reduce: all 576 reductions match the serial reference",
    );
}

#[test]
fn reduce_static() {
    let exe = build("reduce", Link::Static);
    // The shared build runs the large default size. Here 50021 elements keep the test
    // quick on a debug build of the library while the 4- and 8-byte dtypes (200 KB and
    // more, above the size parfor splits) still go through the team.
    check_reduce_output(&run_stdout(
        &exe,
        &["50021"],
        &[("PARFOR_NUM_THREADS", "3"), PASSIVE],
    ));
}

fn check_custom_reduce(link: Link) {
    let exe = build("custom_reduce", link);
    let out = run_stdout(&exe, &[], &[]);
    for threads in 1..=4 {
        assert_contains(&out, &format!("num_threads {threads}: bitwise identical"));
    }
    assert_contains(&out, "num_threads 3, dynamic schedule: bitwise identical");
    assert_contains(&out, "n = 1000003, mean = 1000.00");
    assert_contains(&out, "custom_reduce: ok");
}

#[test]
fn custom_reduce_shared() {
    check_custom_reduce(Link::Shared);
}

#[test]
fn custom_reduce_static() {
    check_custom_reduce(Link::Static);
}

/// The examples are also compiled by the `compare` workspace member with their `main`
/// renamed, next to each other and the library: nothing else may be external.
#[test]
fn examples_export_only_main() {
    require("cc", "gcc");
    require("nm", "binutils");
    let dir = scratch("c_examples/objects");
    for name in ["hello_for", "reduce", "custom_reduce"] {
        let object = dir.join(format!("{name}.o"));
        let renamed = format!("-Dmain=parfor_example_{name}_main");
        let output = std::process::Command::new("cc")
            .args(STRICT_C99)
            .arg(format!("-I{}", root().join("include").display()))
            .arg(&renamed)
            .arg("-c")
            .arg(root().join("c_examples").join(format!("{name}.c")))
            .arg("-o")
            .arg(&object)
            .output()
            .expect("run cc");
        assert!(
            output.status.success(),
            "cc {renamed} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let nm = std::process::Command::new("nm")
            .args(["-g", "--defined-only"])
            .arg(&object)
            .output()
            .expect("run nm");
        let symbols: Vec<String> = String::from_utf8_lossy(&nm.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().last().map(str::to_string))
            .collect();
        assert_eq!(
            symbols,
            vec![format!("parfor_example_{name}_main")],
            "{name}.c must define no external symbol but main (make helpers static)"
        );
    }
}

/// omp_compare.c (with its OpenMP kernels in omp_kernels.c) built as a C user would,
/// `cc -fopenmp` against libparfor.so and libparfor.a: it must report that parfor and
/// OpenMP agree on every workload. Its timings are printed, never asserted.
fn check_omp_compare(link: Link) {
    require("cc", "gcc");
    let dir = scratch(&format!("c_examples/{link:?}"));
    let exe = dir.join("omp_compare");
    let sources = [
        root().join("c_examples").join("omp_compare.c"),
        root().join("c_examples").join("omp_kernels.c"),
    ];
    let mut flags = STRICT_C99.to_vec();
    flags.push("-fopenmp");
    compile_c("cc", &sources, &exe, &flags, link);
    let out = run_stdout(&exe, &[], &[]);
    println!("{out}");
    assert_contains(
        &out,
        "omp_compare: parfor and OpenMP agree on every workload",
    );
}

#[test]
fn omp_compare_shared() {
    check_omp_compare(Link::Shared);
}

#[test]
fn omp_compare_static() {
    check_omp_compare(Link::Static);
}
