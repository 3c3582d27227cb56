//! parfor beside OpenMP and the process environment, through small C programs in
//! tests/c/ built the way a C user builds them:
//! - OpenMP interop (omp_nested.c, with gcc's libgomp and clang's libomp): inside an
//!   active OpenMP region parfor runs on the calling thread unless PARFOR_NESTED=1;
//!   the library itself has no OpenMP dependency.
//! - Default team size (print_threads.c): PARFOR_NUM_THREADS, OMP_NUM_THREADS (first
//!   value of a list), their precedence, malformed values (one message on stderr, the
//!   next rule applies), the affinity mask (taskset) and a cgroup CPU quota.
//! - Wait policy (wait_cpu.c): CPU time burnt while sleeping after a burst of calls.
//! - Exit (exit.c): returning from main or calling exit() while workers spin, are
//!   parked or are running a job, and parfor inside an atexit handler; also under
//!   valgrind, which must report no invalid access.
//!
//! Every child process runs under a generous deadline and is killed when it passes
//! it, so a hang fails the test instead of blocking the run. The tests in this file
//! take a lock so that they run one at a time: the wait-policy test measures CPU
//! time, and other tests' processes running at the same time would only add noise.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::{compile_c, have, lib_dir, root, run_bounded, scratch, Link};

/// Every variable that influences parfor's or OpenMP's configuration: removed from
/// each child's environment so that the machine running the tests cannot skew them.
const CONFIG_VARS: [&str; 10] = [
    "PARFOR_NUM_THREADS",
    "OMP_NUM_THREADS",
    "PARFOR_WAIT_POLICY",
    "OMP_WAIT_POLICY",
    "PARFOR_SPIN_US",
    "PARFOR_NESTED",
    "OMP_NESTED",
    "PARFOR_OMP_TEAM",
    "OMP_THREAD_LIMIT",
    "OMP_DYNAMIC",
];

/// Hang bound for one child process (valgrind runs get more).
const DEADLINE: Duration = Duration::from_secs(60);

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Builds tests/c/`name`.c into the scratch directory, linked to libparfor.so.
fn build(name: &str, compiler: &str, extra: &[&str]) -> PathBuf {
    let tag = format!("{name}-{compiler}").replace(['/', '.'], "_");
    let exe = scratch("interop").join(tag);
    let mut flags = vec![
        "-std=c11", "-O1", "-g", "-pthread", "-Wall", "-Wextra", "-Werror",
    ];
    flags.extend_from_slice(extra);
    compile_c(
        compiler,
        &[root().join("tests/c").join(format!("{name}.c"))],
        &exe,
        &flags,
        Link::Shared,
    );
    exe
}

/// A command with the configuration variables removed and `env` set.
fn command(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args);
    for v in CONFIG_VARS {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    cmd
}

fn expect_success(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------------------------
// OpenMP interop.

fn omp_checks(exe: &Path) {
    // PARFOR_NUM_THREADS pins the default so the program knows what to expect.
    let env = [("PARFOR_NUM_THREADS", "3")];
    let out = run_bounded(command(exe, &["3", "inline"], &env), DEADLINE);
    let stdout = expect_success(&out, "inside OpenMP, default");
    assert!(stdout.contains("omp_nested inline passed"), "{stdout}");
    let env = [("PARFOR_NUM_THREADS", "3"), ("PARFOR_NESTED", "1")];
    let out = run_bounded(command(exe, &["3", "nested"], &env), DEADLINE);
    let stdout = expect_success(&out, "inside OpenMP, PARFOR_NESTED=1");
    assert!(stdout.contains("omp_nested nested passed"), "{stdout}");
}

#[test]
fn inside_openmp_region_with_libgomp() {
    let _serial = serial();
    let exe = build("omp_nested", "gcc", &["-fopenmp"]);
    omp_checks(&exe);
}

/// tests/c/`name`.c built with clang against LLVM libomp (checked with ldd), or
/// `None` with a message where clang is not installed: CI installs it (see the report
/// in tests/sanitizers.rs); a developer machine without it still runs the libgomp
/// variants.
fn build_with_llvm_libomp(name: &str) -> Option<PathBuf> {
    if !have("clang") {
        eprintln!("skipped: clang is not installed");
        return None;
    }
    // Debian's clang finds libomp in its own lib directory at link time; the rpath
    // lets the program find it at run time.
    let llvm_lib = "/usr/lib/llvm-14/lib";
    let rpath = format!("-Wl,-rpath,{llvm_lib}");
    let lflag = format!("-L{llvm_lib}");
    let exe = build(name, "clang", &["-fopenmp=libomp", &lflag, &rpath]);
    let ldd = Command::new("ldd").arg(&exe).output().expect("ldd");
    let ldd = String::from_utf8_lossy(&ldd.stdout);
    assert!(ldd.contains("libomp"), "not linked to LLVM libomp:\n{ldd}");
    assert!(!ldd.contains("libgomp"), "linked to libgomp too:\n{ldd}");
    Some(exe)
}

#[test]
fn inside_openmp_region_with_llvm_libomp() {
    let _serial = serial();
    if let Some(exe) = build_with_llvm_libomp("omp_nested") {
        omp_checks(&exe);
    }
}

/// PARFOR_OMP_TEAM=always: calls run on the OpenMP runtime's threads, correctly,
/// also when OpenMP gives fewer threads than parts.
fn borrow_checks(exe: &Path) {
    let env = [("PARFOR_OMP_TEAM", "always")];
    let out = run_bounded(command(exe, &["active"], &env), DEADLINE);
    let stdout = expect_success(&out, "PARFOR_OMP_TEAM=always");
    assert!(stdout.contains("omp_borrow active passed"), "{stdout}");
    let env = [("PARFOR_OMP_TEAM", "always"), ("OMP_THREAD_LIMIT", "1")];
    let out = run_bounded(command(exe, &["limited"], &env), DEADLINE);
    let stdout = expect_success(&out, "PARFOR_OMP_TEAM=always, OMP_THREAD_LIMIT=1");
    assert!(stdout.contains("omp_borrow limited passed"), "{stdout}");
}

#[test]
fn calls_borrow_libgomp_threads() {
    let _serial = serial();
    borrow_checks(&build("omp_borrow", "gcc", &["-fopenmp"]));
}

#[test]
fn calls_borrow_llvm_libomp_threads() {
    let _serial = serial();
    if let Some(exe) = build_with_llvm_libomp("omp_borrow") {
        borrow_checks(&exe);
    }
}

#[test]
fn library_has_no_openmp_dependency_and_runs_without_one() {
    let _serial = serial();
    let so = lib_dir().join("libparfor.so");
    let dynamic = Command::new("readelf")
        .arg("-d")
        .arg(&so)
        .output()
        .expect("readelf");
    let dynamic = String::from_utf8_lossy(&dynamic.stdout);
    for line in dynamic.lines().filter(|l| l.contains("(NEEDED)")) {
        assert!(
            !line.contains("omp"),
            "libparfor.so needs an OpenMP runtime: {line}"
        );
    }
    // A program with no OpenMP runtime at all in the process.
    let exe = build("print_threads", "cc", &[]);
    let ldd = Command::new("ldd").arg(&exe).output().expect("ldd");
    assert!(!String::from_utf8_lossy(&ldd.stdout).contains("omp"));
    let out = run_bounded(command(&exe, &[], &[("PARFOR_NUM_THREADS", "2")]), DEADLINE);
    assert_eq!(expect_success(&out, "no OpenMP").trim(), "2");
}

// ---------------------------------------------------------------------------------
// Default team size from the environment.

/// The team size a fresh process reports, and its stderr.
fn team_size(exe: &Path, wrapper: &[&str], env: &[(&str, &str)]) -> (usize, String) {
    let out = if wrapper.is_empty() {
        run_bounded(command(exe, &[], env), DEADLINE)
    } else {
        let mut args: Vec<&str> = wrapper[1..].to_vec();
        let exe_s = exe.to_str().expect("utf-8 path");
        args.push(exe_s);
        run_bounded(command(Path::new(wrapper[0]), &args, env), DEADLINE)
    };
    let stdout = expect_success(&out, &format!("{wrapper:?} {env:?}"));
    let n = stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {stdout:?}"));
    (n, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// CPUs this test process may use: what parfor must report with no variables set
/// (the child inherits the affinity mask and cgroup).
fn machine() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// (environment, expected team size, variables that must be warned about once)
type EnvCase = (
    &'static [(&'static str, &'static str)],
    usize,
    &'static [&'static str],
);

#[test]
fn team_size_from_environment() {
    let _serial = serial();
    let exe = build("print_threads", "cc", &[]);
    let m = machine();
    let cases: &[EnvCase] = &[
        (&[], m, &[]),
        (&[("PARFOR_NUM_THREADS", "3")], 3, &[]),
        (&[("OMP_NUM_THREADS", "3")], 3, &[]),
        (&[("OMP_NUM_THREADS", "3,2")], 3, &[]),
        (&[("OMP_NUM_THREADS", "5,2,1")], 5, &[]),
        (
            &[("PARFOR_NUM_THREADS", "5"), ("OMP_NUM_THREADS", "3")],
            5,
            &[],
        ),
        (
            &[("PARFOR_NUM_THREADS", "lots"), ("OMP_NUM_THREADS", "3")],
            3,
            &["PARFOR_NUM_THREADS"],
        ),
        (
            &[("PARFOR_NUM_THREADS", "0"), ("OMP_NUM_THREADS", "2")],
            2,
            &["PARFOR_NUM_THREADS"],
        ),
        (&[("PARFOR_NUM_THREADS", "-4")], m, &["PARFOR_NUM_THREADS"]),
        (&[("PARFOR_NUM_THREADS", "3x")], m, &["PARFOR_NUM_THREADS"]),
        (
            &[("PARFOR_NUM_THREADS", "99999")],
            m,
            &["PARFOR_NUM_THREADS"],
        ),
        (&[("OMP_NUM_THREADS", "x,2")], m, &["OMP_NUM_THREADS"]),
        (&[("OMP_NUM_THREADS", "0")], m, &["OMP_NUM_THREADS"]),
        (
            &[("PARFOR_NUM_THREADS", "many"), ("OMP_NUM_THREADS", "few")],
            m,
            &["PARFOR_NUM_THREADS", "OMP_NUM_THREADS"],
        ),
    ];
    for &(env, want, warned) in cases {
        let (got, stderr) = team_size(&exe, &[], env);
        assert_eq!(got, want, "{env:?}\nstderr:\n{stderr}");
        for var in warned {
            let n = stderr.matches(&format!("{var}=")).count();
            assert_eq!(
                n, 1,
                "{env:?}: want one message about {var}, got {n}:\n{stderr}"
            );
        }
        if warned.is_empty() {
            assert!(stderr.is_empty(), "{env:?}: unexpected stderr:\n{stderr}");
        }
    }
}

#[test]
fn team_size_follows_affinity_mask() {
    let _serial = serial();
    if !have("taskset") && Command::new("taskset").arg("-V").output().is_err() {
        eprintln!("skipped: taskset is not installed (util-linux)");
        return;
    }
    let exe = build("print_threads", "cc", &[]);
    assert_eq!(team_size(&exe, &["taskset", "-c", "0"], &[]).0, 1);
    // The environment still wins over the mask.
    assert_eq!(
        team_size(
            &exe,
            &["taskset", "-c", "0"],
            &[("PARFOR_NUM_THREADS", "2")]
        )
        .0,
        2
    );
    assert_eq!(
        team_size(&exe, &["taskset", "-c", "0"], &[("OMP_NUM_THREADS", "2,1")]).0,
        2
    );
    if machine() < 2 {
        eprintln!("note: this machine has one CPU, so `taskset -c 0` changes nothing here");
    }
}

/// A CPU cgroup with a quota of one CPU, removed on drop.
struct QuotaCgroup {
    dir: PathBuf,
}

impl QuotaCgroup {
    /// Tries cgroup v2 (cpu.max) and then v1 (cpu.cfs_quota_us); `Err` says why
    /// neither could be made (not root, no cpu controller, read-only cgroupfs).
    fn one_cpu() -> Result<Self, String> {
        let name = format!("parfor-test-{}", std::process::id());
        let v2 = Path::new("/sys/fs/cgroup");
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let mut why = Vec::new();
        if v2.join("cgroup.controllers").exists() {
            let dir = v2.join(&name);
            let made = std::fs::write(v2.join("cgroup.subtree_control"), "+cpu")
                .and_then(|()| std::fs::create_dir(&dir))
                .and_then(|()| std::fs::write(dir.join("cpu.max"), "100000 100000"));
            match made {
                Ok(()) => return Ok(QuotaCgroup { dir }),
                Err(e) => {
                    let _ = std::fs::remove_dir(&dir);
                    why.push(format!("cgroup v2 at {}: {e}", v2.display()));
                }
            }
        }
        if v1.join("cpu.cfs_quota_us").exists() {
            let dir = v1.join(&name);
            let made = std::fs::create_dir(&dir)
                .and_then(|()| std::fs::write(dir.join("cpu.cfs_period_us"), "100000"))
                .and_then(|()| std::fs::write(dir.join("cpu.cfs_quota_us"), "100000"));
            match made {
                Ok(()) => return Ok(QuotaCgroup { dir }),
                Err(e) => {
                    let _ = std::fs::remove_dir(&dir);
                    why.push(format!("cgroup v1 at {}: {e}", v1.display()));
                }
            }
        }
        if why.is_empty() {
            why.push("no cgroup v1 cpu hierarchy or v2 hierarchy is mounted".into());
        }
        Err(why.join("; "))
    }

    /// Runs `exe` inside the cgroup (a shell moves itself in, then execs it).
    fn team_size(&self, exe: &Path, env: &[(&str, &str)]) -> usize {
        let script = format!(
            "echo $$ > '{}' && exec '{}'",
            self.dir.join("cgroup.procs").display(),
            exe.display()
        );
        let out = run_bounded(command(Path::new("sh"), &["-c", &script], env), DEADLINE);
        let stdout = expect_success(&out, "in the cgroup");
        stdout
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {stdout:?}"))
    }
}

impl Drop for QuotaCgroup {
    fn drop(&mut self) {
        // The child has exited, so the cgroup is empty and can be removed.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[test]
fn team_size_follows_cgroup_quota() {
    let _serial = serial();
    let exe = build("print_threads", "cc", &[]);
    let cgroup = match QuotaCgroup::one_cpu() {
        Ok(c) => c,
        Err(why) => {
            // Creating a cgroup needs root and a writable cgroupfs; CI runs as root.
            eprintln!("skipped: cannot create a cgroup with a CPU quota: {why}");
            return;
        }
    };
    assert_eq!(cgroup.team_size(&exe, &[]), 1, "a quota of one CPU");
    assert_eq!(
        cgroup.team_size(&exe, &[("PARFOR_NUM_THREADS", "2")]),
        2,
        "the environment wins"
    );
    if machine() < 2 {
        eprintln!("note: this machine has one CPU, so the quota changes nothing here");
    }
}

// ---------------------------------------------------------------------------------
// Wait policy.

/// Milliseconds of CPU time wait_cpu burnt during its 1 s sleep.
fn idle_cpu_ms(exe: &Path, env: &[(&str, &str)]) -> f64 {
    let out = run_bounded(command(exe, &[], env), DEADLINE);
    let stdout = expect_success(&out, &format!("wait_cpu {env:?}"));
    stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {stdout:?}"))
}

#[test]
fn passive_workers_burn_no_cpu_while_idle() {
    let _serial = serial();
    let exe = build("wait_cpu", "cc", &[]);
    // Passive: parked at once. 50 ms of a 1 s sleep allows for the kernel's
    // accounting granularity (a tick is 4 ms at HZ=250) and the last wake-ups.
    for env in [
        &[("PARFOR_WAIT_POLICY", "passive")][..],
        &[("OMP_WAIT_POLICY", "passive")][..],
        &[("OMP_WAIT_POLICY", "PASSIVE")][..],
    ] {
        let ms = idle_cpu_ms(&exe, env);
        assert!(ms < 50.0, "{env:?}: {ms} ms of CPU during a 1 s sleep");
    }
    // Default: a 2 ms spin per worker, then park: far below the 3 s that three
    // spinning workers would burn.
    let ms = idle_cpu_ms(&exe, &[]);
    assert!(
        ms < 300.0,
        "default policy: {ms} ms of CPU during a 1 s sleep"
    );
}

#[test]
fn active_policy_spins_and_wins_over_omp_wait_policy() {
    let _serial = serial();
    let exe = build("wait_cpu", "cc", &[]);
    // The counterpart of the test above, and proof that the measurement sees
    // spinning: three workers that never park burn most of the two cores for the
    // whole second. 100 ms leaves room for a loaded machine; on one where other
    // processes take both cores, workers that yield every few microseconds can get
    // little of them (17 ms seen once beside a compiler), so up to five tries: a
    // runtime that parks fails them all.
    let env = [
        ("PARFOR_WAIT_POLICY", "active"),
        ("OMP_WAIT_POLICY", "passive"),
    ];
    let tries: Vec<f64> = (0..5)
        .scan(false, |spun, _| {
            if *spun {
                return None;
            }
            let ms = idle_cpu_ms(&exe, &env);
            *spun = ms > 100.0;
            Some(ms)
        })
        .collect();
    assert!(
        tries.iter().any(|&ms| ms > 100.0),
        "PARFOR_WAIT_POLICY=active: only {tries:?} ms of CPU in five tries: not spinning?"
    );
}

// ---------------------------------------------------------------------------------
// Exit.

const EXIT_MODES: [(&str, i32); 6] = [
    ("return-spinning", 0),
    ("exit-spinning", 0),
    ("return-parked", 0),
    ("exit-parked", 3),
    ("exit-during-call", 0),
    ("atexit-call", 0),
];

fn check_exit(exe: &Path, wrapper: &[&str], env: &[(&str, &str)], limit: Duration) {
    for (mode, code) in EXIT_MODES {
        let cmd = if wrapper.is_empty() {
            command(exe, &[mode], env)
        } else {
            let mut args: Vec<&str> = wrapper[1..].to_vec();
            args.push(exe.to_str().expect("utf-8 path"));
            args.push(mode);
            command(Path::new(wrapper[0]), &args, env)
        };
        let out = run_bounded(cmd, limit);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{wrapper:?} {mode} {env:?}: {:?}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        if mode == "atexit-call" {
            assert!(String::from_utf8_lossy(&out.stderr).contains("atexit call ok"));
        }
    }
}

#[test]
fn exit_while_workers_spin_park_or_run() {
    let _serial = serial();
    let exe = build("exit", "cc", &[]);
    for _ in 0..5 {
        check_exit(&exe, &[], &[], DEADLINE);
        check_exit(&exe, &[], &[("PARFOR_WAIT_POLICY", "active")], DEADLINE);
        check_exit(&exe, &[], &[("PARFOR_WAIT_POLICY", "passive")], DEADLINE);
    }
}

#[test]
fn exit_under_valgrind_has_no_invalid_access() {
    let _serial = serial();
    if Command::new("valgrind").arg("--version").output().is_err() {
        eprintln!("skipped: valgrind is not installed");
        return;
    }
    let exe = build("exit", "cc", &[]);
    // Definite leaks and every memory error fail; memory still reachable at exit
    // (the leaked team, threads that never return) does not.
    let valgrind = [
        "valgrind",
        "-q",
        "--error-exitcode=97",
        "--leak-check=full",
        "--show-leak-kinds=definite",
        "--errors-for-leak-kinds=definite",
    ];
    check_exit(&exe, &valgrind, &[], Duration::from_secs(180));
}
