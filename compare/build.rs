//! Builds the C (and C++) code that the comparison and the example binaries link,
//! into archives that go only into this crate's binaries: the `parfor_*` symbols
//! they call come from the `parfor` rlib in the same link, so the shipped
//! libparfor.so/.a never contain example code nor depend on an OpenMP runtime.
//!
//! - `c_examples/omp_kernels.c` and `omp_compare.c` (its `main` renamed
//!   `parfor_example_omp_compare_main`) with gcc -fopenmp, linked with libgomp.
//! - `hello_for.c`, `reduce.c`, `custom_reduce.c`, each with its `main` renamed
//!   `parfor_example_<stem>_main`, for the binaries in src/bin/.
//! - `omp_kernels.c` again with clang -fopenmp=libomp, as a shared object that the
//!   driver loads at run time: libgomp and LLVM libomp cannot both be linked into one
//!   binary. Skipped, with the reason passed on to the driver, where clang or libomp
//!   is missing.
//! - `omp_compare.c` again with clang, `-DPFK_LOOPS_ONLY=clang`: only the parfor
//!   loops whose C body a compiler may vectorise (sum of squares through
//!   reduce_with, the imbalanced loops), named `pfk_clang_*`, into
//!   `libcompare_parfor_clang.a` (cfg `parfor_compare_clang_loops`). Their runtime
//!   rows hold parfor against OpenMP on the same body from the same compiler; the
//!   archive has no OpenMP and its `parfor_*` calls bind to the one parfor rlib, like
//!   the gcc archive's. Skipped, with the reason passed on, where clang is missing.
//! - `compare/c/epcc.c` (the EPCC syncbench method's tests) into the gcc archive with
//!   its parfor side (-DEPCC_PARFOR), and into the clang shared object without it.
//! - `tbb_kernels.cpp` with oneTBB, where `<tbb/tbb.h>` exists (cfg `parfor_compare_tbb`).

#[path = "build_scan_sort.rs"]
mod build_scan_sort;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The examples another part of the project writes; each becomes a binary here.
const EXAMPLES: [&str; 3] = ["hello_for", "reduce", "custom_reduce"];

/// Flags of every kernel build: the peers are gcc 12 / clang 14 at -O3
/// -march=native. prefer-vector-width=512 lets both compilers use the full AVX-512
/// registers where the CPU has them (they default to 256 bits on recent Intel
/// parts), so the OpenMP side is the strongest build of its loops; parfor's own
/// kernels pick AVX-512 at run time.
const OPT_FLAGS: [&str; 2] = ["-O3", "-march=native"];
const WIDE_VECTORS: &str = "-mprefer-vector-width=512";

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest
        .parent()
        .expect("compare/ sits in the workspace root")
        .to_path_buf();
    let examples = root.join("c_examples");
    let include = root.join("include");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let epcc = manifest.join("c").join("epcc.c");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", epcc.display());
    println!("cargo:rerun-if-changed={}", examples.display());
    println!(
        "cargo:rerun-if-changed={}",
        include.join("parfor.h").display()
    );
    println!("cargo::rustc-check-cfg=cfg(parfor_compare_tbb)");
    println!("cargo::rustc-check-cfg=cfg(parfor_compare_clang_loops)");

    build_gcc_openmp(&examples, &include, &epcc);
    build_examples(&examples, &include);
    build_clang_openmp(&examples, &out, &epcc);
    build_parfor_clang_loops(&examples, &include);
    build_tbb(&examples);
    build_scan_sort::build(&manifest);
    println!(
        "cargo:rustc-env=PARFOR_COMPARE_GCC_VERSION={}",
        first_line("gcc", &["--version"])
    );
}

/// The gcc/libgomp kernels and omp_compare.c into `libcompare_omp_gcc.a`.
fn build_gcc_openmp(examples: &Path, include: &Path, epcc: &Path) {
    let mut build = cc::Build::new();
    build
        .compiler("gcc")
        .std("c99")
        .include(include)
        .include(examples)
        .file(examples.join("omp_kernels.c"))
        .file(examples.join("omp_compare.c"))
        .file(epcc)
        .define("main", "parfor_example_omp_compare_main")
        .define("EPCC_PARFOR", None)
        .flag("-fopenmp")
        .flag("-Wall")
        .flag("-Wextra")
        .opt_level(3);
    for f in OPT_FLAGS {
        build.flag(f);
    }
    build.flag_if_supported(WIDE_VECTORS);
    build.compile("compare_omp_gcc");
    // libgomp, the runtime of gcc's -fopenmp, as a shared library.
    println!("cargo:rustc-link-lib=dylib=gomp");
}

/// hello_for.c, reduce.c and custom_reduce.c, `main` renamed per file, into
/// `libcompare_examples.a` (one cc invocation per file, since each needs its own
/// `-Dmain=...`).
fn build_examples(examples: &Path, include: &Path) {
    for stem in EXAMPLES {
        let source = examples.join(format!("{stem}.c"));
        assert!(
            source.exists(),
            "{} is missing: the example binaries need it",
            source.display()
        );
        cc::Build::new()
            .std("c99")
            .include(include)
            .file(&source)
            .define("main", format!("parfor_example_{stem}_main").as_str())
            .flag("-Wall")
            .flag("-Wextra")
            .opt_level(2)
            .compile(&format!("compare_example_{stem}"));
    }
}

/// omp_kernels.c with clang and LLVM libomp into a shared object loaded by the
/// driver. Sets PARFOR_COMPARE_CLANG_KERNELS to its path, or to "" with
/// PARFOR_COMPARE_CLANG_NOTE saying why not.
fn build_clang_openmp(examples: &Path, out: &Path, epcc: &Path) {
    let so = out.join("libcompare_omp_clang.so");
    let note = match try_build_clang(examples, &so, epcc) {
        Ok(()) => {
            println!(
                "cargo:rustc-env=PARFOR_COMPARE_CLANG_KERNELS={}",
                so.display()
            );
            format!("clang/libomp: {}", first_line("clang", &["--version"]))
        }
        Err(why) => {
            println!("cargo:warning=clang/libomp columns skipped: {why}");
            println!("cargo:rustc-env=PARFOR_COMPARE_CLANG_KERNELS=");
            why
        }
    };
    println!("cargo:rustc-env=PARFOR_COMPARE_CLANG_NOTE={note}");
}

fn try_build_clang(examples: &Path, so: &Path, epcc: &Path) -> Result<(), String> {
    // clang links its own libomp (Debian: /usr/lib/llvm-N/lib, beside its resource
    // directory); the run-time path is recorded so that the loader finds the same
    // one even where it is not in the system's library path.
    let resource = Command::new("clang")
        .arg("-print-resource-dir")
        .output()
        .map_err(|e| format!("clang not found ({e}); install clang and libomp-dev"))?;
    let resource = PathBuf::from(String::from_utf8_lossy(&resource.stdout).trim());
    let mut cmd = Command::new("clang");
    cmd.args(["-std=c99", "-fopenmp=libomp", "-fPIC", "-shared"])
        .args(OPT_FLAGS)
        .arg(WIDE_VECTORS)
        // clang 14 cannot vectorise a reduction inside `parallel for simd` and says
        // so for every such loop; that is one of the things this build measures.
        .arg("-Wno-pass-failed")
        .arg(format!("-I{}", examples.display()))
        .arg(examples.join("omp_kernels.c"))
        .arg(epcc)
        .arg("-o")
        .arg(so);
    if let Some(libdir) = resource.ancestors().nth(2) {
        if libdir.join("libomp.so").exists() {
            cmd.arg(format!("-Wl,-rpath,{}", libdir.display()));
        }
    }
    let output = cmd.output().map_err(|e| format!("cannot run clang: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "clang -fopenmp=libomp failed (install clang and libomp-dev): {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .next()
                .unwrap_or("")
        ))
    }
}

/// The compiler-dependent parfor loops of omp_compare.c with clang and the flags of
/// the clang OpenMP kernels, into `libcompare_parfor_clang.a`. Sets the cfg
/// `parfor_compare_clang_loops`, or PARFOR_COMPARE_PARFOR_CLANG_NOTE saying why not.
fn build_parfor_clang_loops(examples: &Path, include: &Path) {
    let why = match Command::new("clang").arg("--version").output() {
        Err(e) => Some(format!("clang not found ({e}); install clang")),
        Ok(_) => {
            let mut build = cc::Build::new();
            build
                .compiler("clang")
                .std("c99")
                .include(include)
                .include(examples)
                .file(examples.join("omp_compare.c"))
                .define("PFK_LOOPS_ONLY", "clang")
                .flag("-Wall")
                .flag("-Wextra")
                .opt_level(3);
            for f in OPT_FLAGS {
                build.flag(f);
            }
            build.flag(WIDE_VECTORS);
            build.try_compile("compare_parfor_clang").err().map(|e| {
                let e = e.to_string();
                // One line: it goes into a rustc-env value.
                let first = e.lines().next().unwrap_or("").to_string();
                format!("clang failed on omp_compare.c: {first}")
            })
        }
    };
    match why {
        None => {
            println!("cargo:rustc-cfg=parfor_compare_clang_loops");
            println!("cargo:rustc-env=PARFOR_COMPARE_PARFOR_CLANG_NOTE=");
        }
        Some(why) => {
            println!("cargo:warning=parfor-clang columns skipped: {why}");
            println!("cargo:rustc-env=PARFOR_COMPARE_PARFOR_CLANG_NOTE={why}");
        }
    }
}

/// tbb_kernels.cpp into `libcompare_tbb.a`, linked with libtbb, where the oneTBB
/// header is installed (Debian: libtbb-dev).
fn build_tbb(examples: &Path) {
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .include(examples)
        .file(examples.join("tbb_kernels.cpp"))
        .flag("-Wall")
        .flag("-Wextra")
        .opt_level(3)
        .cargo_warnings(false);
    for f in OPT_FLAGS {
        build.flag(f);
    }
    build.flag_if_supported(WIDE_VECTORS);
    match build.try_compile("compare_tbb") {
        Ok(()) => {
            println!("cargo:rustc-link-lib=dylib=tbb");
            println!("cargo:rustc-cfg=parfor_compare_tbb");
        }
        Err(_) => println!("cargo:warning=oneTBB columns skipped: install libtbb-dev"),
    }
}

/// The first line a tool prints (its version), or a note that it is missing.
fn first_line(tool: &str, args: &[&str]) -> String {
    Command::new(tool)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| format!("{tool} not found"))
}
