//! fork() in a C program that used parfor: the child can call parfor at once and
//! gets correct results, the parent is unaffected (tests/c/fork.c, which bounds every
//! child with alarm() so that a hang fails instead of blocking the test run).
//! Built against both libparfor.so and libparfor.a, since the static library carries
//! its own copy of the runtime and its own pthread_atfork registration.

mod common;

use common::{compile_c, root, run_ok, scratch, Link};

fn build_and_run(link: Link) {
    let dir = scratch("fork");
    let exe = dir.join(format!("fork_{link:?}").to_lowercase());
    compile_c(
        "cc",
        &[root().join("tests/c/fork.c")],
        &exe,
        &[
            "-std=c11",
            "-O1",
            "-g",
            "-pthread",
            "-Wall",
            "-Wextra",
            "-Wpedantic",
            "-Werror",
        ],
        link,
    );
    let out = run_ok(&exe, &[], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("fork test passed"), "{stdout}");
}

#[test]
fn child_of_fork_uses_parfor_shared() {
    build_and_run(Link::Shared);
}

#[test]
fn child_of_fork_uses_parfor_static() {
    build_and_run(Link::Static);
}
