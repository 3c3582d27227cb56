//! The C stress test (tests/c/stress.c) and the C examples under clang's sanitizers,
//! linked against the uninstrumented libparfor.so the way a C user links it:
//! - AddressSanitizer + UndefinedBehaviorSanitizer: stress.c and the examples
//!   c_examples/hello_for.c, reduce.c and custom_reduce.c. ASan replaces malloc and
//!   free for the whole process, so the library's allocations are checked for
//!   invalid frees and double frees too, and LeakSanitizer runs at exit.
//! - ThreadSanitizer: stress.c. The library is not instrumented, so TSan cannot see
//!   the synchronisation inside it (its own atomics and futexes). Two things make
//!   the run both clean and meaningful, and no suppression file is needed:
//!   * stress.c annotates the fork/join edges the header promises (see its top
//!     comment), so the program's own plain accesses are checked against them;
//!   * `ignore_noninstrumented_modules=1` makes TSan's interceptors (malloc, free,
//!     memcpy) ignore calls made from uninstrumented code. Without it every
//!     allocation the library makes on one thread and frees on another is reported
//!     as a race, because the hand-off happens through atomics TSan cannot see.
//!     Accesses from instrumented code, including every callback, are still
//!     checked: a build with a deliberate race in a loop body must be reported.
//!
//! Needs clang and its sanitizer runtimes (Debian: clang, libclang-rt-14-dev); the
//! tests print "skipped" and pass without them so that `cargo test` works on a bare
//! machine, and CI installs both.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{compile_c, have, root, scratch, Link};

/// Hang bound for one sanitized run; they take seconds.
const DEADLINE: Duration = Duration::from_secs(180);

const ASAN_FLAGS: [&str; 6] = [
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=undefined",
    "-fno-omit-frame-pointer",
    "-g",
    "-O1",
    "-pthread",
];

const WARNINGS: [&str; 4] = ["-Wall", "-Wextra", "-Wpedantic", "-Werror"];

/// True when clang can build and run a program with `sanitizer`.
fn clang_supports(sanitizer: &str) -> bool {
    if !have("clang") {
        eprintln!("skipped: clang is not installed");
        return false;
    }
    let dir = scratch("sanitizers");
    let src = dir.join("probe.c");
    std::fs::write(&src, "int main(void) { return 0; }\n").expect("write probe");
    let exe = dir.join(format!("probe-{sanitizer}"));
    let ok = Command::new("clang")
        .arg(format!("-fsanitize={sanitizer}"))
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
        .is_ok_and(|o| o.status.success())
        && Command::new(&exe)
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!(
            "skipped: clang cannot build with -fsanitize={sanitizer} (libclang-rt-14-dev missing?)"
        );
    }
    ok
}

fn build(sources: &[PathBuf], name: &str, flags: &[&str]) -> PathBuf {
    let exe = scratch("sanitizers").join(name);
    let include_examples = format!("-I{}", root().join("c_examples").display());
    let mut all: Vec<&str> = flags.to_vec();
    all.extend_from_slice(&WARNINGS);
    all.push(&include_examples);
    compile_c("clang", sources, &exe, &all, Link::Shared);
    exe
}

/// Runs with a deadline; panics on a hang.
fn run_bounded(exe: &Path, env: &[(&str, String)]) -> Output {
    let mut child = Command::new(exe)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{} hung (killed after {DEADLINE:?}):\n{}",
                exe.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_clean(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("Sanitizer") && !stderr.contains("runtime error"),
        "{what}: {:?}\nstdout:\n{}\nstderr:\n{stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

fn asan_env() -> Vec<(&'static str, String)> {
    vec![
        (
            "ASAN_OPTIONS",
            "detect_leaks=1:abort_on_error=0:exitcode=86".to_string(),
        ),
        (
            "UBSAN_OPTIONS",
            "print_stacktrace=1:halt_on_error=1".to_string(),
        ),
    ]
}

fn tsan_env() -> Vec<(&'static str, String)> {
    vec![(
        "TSAN_OPTIONS",
        "ignore_noninstrumented_modules=1:halt_on_error=1:exitcode=66".to_string(),
    )]
}

#[test]
fn stress_under_address_sanitizer() {
    if !clang_supports("address") {
        return;
    }
    let exe = build(
        &[root().join("tests/c/stress.c")],
        "stress-asan",
        &ASAN_FLAGS,
    );
    let out = run_bounded(&exe, &asan_env());
    assert_clean(&out, "stress.c under ASan+UBSan");
    assert!(String::from_utf8_lossy(&out.stdout).contains("stress.c passed"));
}

#[test]
fn examples_under_address_sanitizer() {
    if !clang_supports("address") {
        return;
    }
    let mut ran = 0;
    for name in ["hello_for", "reduce", "custom_reduce"] {
        let src = root().join("c_examples").join(format!("{name}.c"));
        if !src.exists() {
            // The examples are written under another issue; each is checked as soon
            // as it exists.
            eprintln!("note: {} does not exist yet", src.display());
            continue;
        }
        let mut flags = ASAN_FLAGS.to_vec();
        flags.push("-std=c99");
        let exe = build(&[src], &format!("{name}-asan"), &flags);
        let out = run_bounded(&exe, &asan_env());
        assert_clean(&out, &format!("{name} under ASan+UBSan"));
        ran += 1;
    }
    eprintln!("{ran} examples ran under ASan");
}

#[test]
fn stress_under_thread_sanitizer() {
    if !clang_supports("thread") {
        return;
    }
    let flags = ["-fsanitize=thread", "-g", "-O1", "-pthread", "-std=c11"];
    let exe = build(&[root().join("tests/c/stress.c")], "stress-tsan", &flags);
    let out = run_bounded(&exe, &tsan_env());
    assert_clean(&out, "stress.c under TSan");
    assert!(String::from_utf8_lossy(&out.stdout).contains("stress.c passed"));
}

#[test]
fn thread_sanitizer_still_sees_races_in_callbacks() {
    if !clang_supports("thread") {
        return;
    }
    let flags = [
        "-fsanitize=thread",
        "-g",
        "-O1",
        "-pthread",
        "-std=c11",
        "-DINJECT_RACE",
    ];
    let exe = build(
        &[root().join("tests/c/stress.c")],
        "stress-tsan-race",
        &flags,
    );
    let out = run_bounded(&exe, &tsan_env());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(66)
            && stderr.contains("data race")
            && stderr.contains("loop_body"),
        "the injected race was not reported: {:?}\n{stderr}",
        out.status
    );
}
