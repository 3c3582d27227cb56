//! Shared helpers for integration tests that build and run C programs against the
//! library the way a C user would: `cc ... -Iinclude -L<target> -lparfor`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding the libparfor.so / libparfor.a that this test run built
/// (target/<profile>, the parent of the test binary's deps/ directory).
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("target/<profile>/deps/<test>");
    let profile = deps.parent().expect("target/<profile>/deps");
    // deps/ holds the libraries this cargo invocation built. target/<profile> holds
    // copies that only `cargo build` refreshes, so they may be stale during
    // `cargo test`; use them only when deps/ has none.
    let dir = if deps.join("libparfor.so").exists() && deps.join("libparfor.a").exists() {
        deps.to_path_buf()
    } else {
        profile.to_path_buf()
    };
    assert!(
        dir.join("libparfor.so").exists() && dir.join("libparfor.a").exists(),
        "libparfor.so and libparfor.a not found in {}",
        dir.display()
    );
    dir
}

/// A scratch directory for this test's outputs.
pub fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// How a C program links the library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// `-lparfor` against libparfor.so, with an rpath to find it at run time.
    Shared,
    /// libparfor.a, plus the system libraries Rust's std needs.
    Static,
}

/// Compiles C `sources` into the executable `out` with `compiler` (for example "cc"
/// or "clang") and `flags`, linking parfor as `link`. Panics with the compiler's
/// output on failure.
pub fn compile_c(compiler: &str, sources: &[PathBuf], out: &Path, flags: &[&str], link: Link) {
    let lib = lib_dir();
    let mut cmd = Command::new(compiler);
    cmd.args(flags)
        .arg(format!("-I{}", root().join("include").display()))
        .args(sources)
        .arg("-o")
        .arg(out);
    match link {
        Link::Shared => {
            cmd.arg(format!("-L{}", lib.display()))
                .arg(format!("-Wl,-rpath,{}", lib.display()))
                .arg("-lparfor");
        }
        Link::Static => {
            cmd.arg(lib.join("libparfor.a"));
        }
    }
    cmd.args(["-lpthread", "-ldl", "-lm"]);
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        output.status.success(),
        "{compiler} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs a program with extra environment variables and returns its output; panics
/// with its stdout and stderr when it does not exit 0.
pub fn run_ok(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let output = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        output.status.success(),
        "{} exited with {:?}\nstdout:\n{}\nstderr:\n{}",
        program.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Flags every C example and header check is built with: what the issue asks C
/// code to be clean under.
pub const STRICT_C99: &[&str] = &[
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-O2",
];

/// Runs `program` and returns its stdout as text, after `run_ok`'s exit check.
pub fn run_stdout(program: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let output = run_ok(program, args, env);
    String::from_utf8(output.stdout).expect("program output is UTF-8")
}

/// Panics with an install hint when `tool` cannot run: the tests that need it are
/// part of the contract (see issue 2), so a missing tool is a failure, not a skip.
pub fn require(tool: &str, apt_package: &str) {
    assert!(
        have(tool),
        "`{tool} --version` does not run: install it (Debian/Ubuntu: apt-get install {apt_package})"
    );
}

/// True when `tool --version` runs.
pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// splitmix64: a tiny deterministic generator, so that test data and failures
/// reproduce from a seed.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Options as a C caller makes them: `parfor_options_init`, then the three fields.
pub fn opts(
    threads: usize,
    schedule: parfor::ffi::parfor_schedule,
    chunk: usize,
) -> parfor::ffi::parfor_options {
    let mut o = std::mem::MaybeUninit::<parfor::ffi::parfor_options>::uninit();
    // SAFETY: parfor_options_init writes the whole struct.
    let mut o = unsafe {
        parfor::ffi::parfor_options_init(o.as_mut_ptr());
        o.assume_init()
    };
    o.num_threads = threads;
    o.schedule = schedule as i32;
    o.chunk = chunk;
    o
}

/// This thread's `parfor_last_error()`, copied.
pub fn last_error() -> String {
    // SAFETY: parfor_last_error never returns NULL and the text is copied at once.
    unsafe { std::ffi::CStr::from_ptr(parfor::ffi::parfor_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Runs `cmd` to completion or kills it at `limit`; panics on a hang. The child runs
/// in its own process group, and the whole group is killed at the end: a grandchild
/// left behind (a hung child of fork()) would otherwise keep the output pipes open
/// and block the collection of the output forever.
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    use std::os::unix::process::CommandExt;
    let what = format!("{cmd:?}");
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let group = -i32::try_from(child.id()).expect("pid fits in i32");
    let start = Instant::now();
    loop {
        match child.try_wait().expect("wait for child") {
            Some(_) => {
                // SAFETY: kill has no memory-safety preconditions; the group is the
                // one this child leads (it may be empty by now).
                unsafe { libc::kill(group, libc::SIGKILL) };
                return child.wait_with_output().expect("collect output");
            }
            None if start.elapsed() > limit => {
                // SAFETY: as above.
                unsafe { libc::kill(group, libc::SIGKILL) };
                let out = child.wait_with_output().expect("collect output");
                panic!(
                    "{what} hung: killed after {limit:?}\nstdout:\n{}\nstderr:\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}
