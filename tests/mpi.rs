//! Hybrid MPI + parfor: builds c_examples/mpi_reduce.c with mpicc against the library
//! and runs it, and python/examples/mpi_sum.py, with 1, 2 and 4 ranks x 1 and 2
//! threads. The exact sum must be bitwise the same in every run, in C and in Python,
//! and equal to Python's math.fsum of the same data.
//!
//! MPI is part of the test environment (CI installs openmpi-bin, libopenmpi-dev and
//! mpi4py): a missing mpicc, mpirun or mpi4py fails the test with an install hint,
//! unless PARFOR_SKIP_MPI=1.

mod common;

use std::path::Path;
use std::process::Command;

use common::{compile_c, lib_dir, root, scratch, Link, STRICT_C99};

/// Elements in all: a multiple of 3, so that every big value has its partner.
const N: &str = "300000";
const RANKS: [usize; 3] = [1, 2, 4];
const THREADS: [usize; 2] = [1, 2];
/// Seconds before a hung mpirun is killed (a normal run takes about one).
const TIMEOUT: &str = "300";

fn skip() -> bool {
    if std::env::var_os("PARFOR_SKIP_MPI").is_some_and(|v| v == "1") {
        eprintln!("PARFOR_SKIP_MPI=1: MPI tests skipped");
        true
    } else {
        false
    }
}

fn require_mpi() {
    for tool in ["mpicc", "mpirun"] {
        assert!(
            common::have(tool),
            "`{tool} --version` does not run: install MPI (Debian/Ubuntu: apt-get install \
             openmpi-bin libopenmpi-dev), or set PARFOR_SKIP_MPI=1 to skip the MPI tests"
        );
    }
}

/// Runs `program args` under mpirun with `ranks` processes and `threads` parfor threads
/// each, and returns its stdout; panics with its output when it fails or hangs.
fn mpirun(ranks: usize, threads: usize, program: &[&str], env: &[(&str, &str)]) -> String {
    let threads = threads.to_string();
    let ranks = ranks.to_string();
    let output = Command::new("timeout")
        .args(["--kill-after=10", TIMEOUT, "mpirun", "--allow-run-as-root"])
        .args(["--oversubscribe", "-np", &ranks])
        .args(program)
        .env("PARFOR_NUM_THREADS", &threads)
        .envs(env.iter().copied())
        .output()
        .expect("run timeout and mpirun");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "mpirun -np {ranks} {program:?} (PARFOR_NUM_THREADS={threads}) exited with {:?}\n\
         stdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The value of the `exact bits = 0x...` line, after checking the report's shape.
fn exact_bits(stdout: &str, ranks: usize) -> u64 {
    let rank_lines = stdout.lines().filter(|l| l.starts_with("rank ")).count();
    assert_eq!(rank_lines, ranks, "one timing line per rank:\n{stdout}");
    assert!(stdout.contains("fast sum  = "), "no fast sum:\n{stdout}");
    assert!(stdout.contains("exact sum = "), "no exact sum:\n{stdout}");
    let hex = stdout
        .lines()
        .find_map(|l| l.strip_prefix("exact bits = 0x"))
        .unwrap_or_else(|| panic!("no `exact bits` line:\n{stdout}"));
    u64::from_str_radix(hex.trim(), 16).expect("exact bits in hex")
}

/// math.fsum of a file of native-endian doubles, as its bit pattern.
fn python_fsum(path: &Path) -> u64 {
    let script = "import array, math, struct, sys\n\
                  a = array.array('d')\n\
                  a.frombytes(open(sys.argv[1], 'rb').read())\n\
                  print(struct.unpack('=Q', struct.pack('=d', math.fsum(a)))[0])";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3 runs (it is part of the test environment)");
    assert!(
        out.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn mpi_examples_agree_across_ranks_and_threads_and_with_fsum() {
    if skip() {
        return;
    }
    require_mpi();
    let dir = scratch("mpi");
    let exe = dir.join("mpi_reduce");
    compile_c(
        "mpicc",
        &[root().join("c_examples/mpi_reduce.c")],
        &exe,
        STRICT_C99,
        Link::Shared,
    );
    let exe_str = exe.to_str().expect("UTF-8 path");

    // The reference: math.fsum of the whole array, dumped by a one-rank run.
    let dump = dir.join("data");
    let dump_str = dump.to_str().expect("UTF-8 path");
    let out = mpirun(1, 1, &[exe_str, N, "--dump", dump_str], &[]);
    let want = python_fsum(&dir.join("data.0"));
    assert_eq!(exact_bits(&out, 1), want, "one rank against math.fsum");
    // The data has hard cancellations: the exact sum is small, the fast one is not.
    assert!(f64::from_bits(want).abs() < 1e6, "{}", f64::from_bits(want));

    for ranks in RANKS {
        for threads in THREADS {
            let out = mpirun(ranks, threads, &[exe_str, N], &[]);
            assert_eq!(
                exact_bits(&out, ranks),
                want,
                "C, {ranks} ranks x {threads} threads:\n{out}"
            );
        }
    }

    // The Python example, through the parfor package and mpi4py.
    let python_dir = root().join("python");
    let library = lib_dir().join("libparfor.so");
    let env = [
        ("PYTHONPATH", python_dir.to_str().expect("UTF-8 path")),
        ("PARFOR_LIBRARY", library.to_str().expect("UTF-8 path")),
    ];
    let probe = Command::new("python3")
        .args([
            "-c",
            "import mpi4py, parfor; print(hasattr(parfor, 'ExactSum'))",
        ])
        .envs(env)
        .output()
        .expect("python3 runs");
    assert!(
        probe.status.success(),
        "mpi4py or the parfor package does not import: install mpi4py (pip install \
         mpi4py==4.1.2, after libopenmpi-dev), or set PARFOR_SKIP_MPI=1\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout).trim(),
        "True",
        "the parfor package has no ExactSum"
    );
    let script = root().join("python/examples/mpi_sum.py");
    let script = script.to_str().expect("UTF-8 path");
    for ranks in RANKS {
        for threads in THREADS {
            let out = mpirun(ranks, threads, &["python3", script, N], &env);
            assert_eq!(
                exact_bits(&out, ranks),
                want,
                "Python, {ranks} ranks x {threads} threads:\n{out}"
            );
        }
    }
}
