//! Runs the Python package's test suite (python/tests, stdlib unittest) against the
//! libparfor.so of this cargo build, so that `cargo test` covers the Python bindings.
//! numpy- and cffi-dependent tests skip themselves when those are missing; the
//! packaging test (a venv and `pip install ./python`) runs unless
//! PARFOR_SKIP_VENV_TEST=1. The interpreter is `python3`, or $PARFOR_PYTHON.

mod common;

use std::process::Command;

use common::{lib_dir, root};

#[test]
fn python_suite() {
    let lib = lib_dir().join("libparfor.so");
    let python = std::env::var("PARFOR_PYTHON").unwrap_or_else(|_| "python3".to_string());
    // target/<profile>/libparfor.so or target/<profile>/deps/libparfor.so.
    let target_dir = lib
        .ancestors()
        .find(|p| p.join("CACHEDIR.TAG").is_file())
        .or_else(|| lib.ancestors().nth(2))
        .expect("the target directory");
    let output = Command::new(&python)
        .args(["-m", "unittest", "discover", "-s", "python/tests", "-v"])
        .current_dir(root())
        .env("PARFOR_LIBRARY", &lib)
        // The packaging test builds its wheel under this run's target directory.
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python}: {e} (set PARFOR_PYTHON to an interpreter)")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // unittest reports on stderr; shown in full (cargo test prints it on failure, or
    // always with --nocapture).
    println!("{stdout}");
    println!("{stderr}");
    assert!(
        output.status.success(),
        "the Python test suite failed (output above)"
    );
    assert!(
        stderr.contains("\nOK"),
        "unittest did not report OK (output above)"
    );
}
