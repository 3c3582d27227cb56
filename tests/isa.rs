//! PARFOR_ISA: the kernels give the same bits under every instruction-set level this
//! CPU supports, and the variable never selects a level above the CPU's.
//!
//! `every_level_gives_the_same_bits` re-runs this test binary once per supported
//! level (PARFOR_ISA=baseline, avx2, avx512 as far as the CPU goes), each child
//! running `bits_at_this_level`, which checks the level it got, checks the float sums
//! against the lane model spelled out in src/kernels (golden order), and prints the
//! bits of many results (kernels and whole reductions, f32/f64/integers, every
//! alignment within a cache line, sizes across the one-block, head-chunk and prefetch
//! paths, 1 and 2 threads). The parent compares the children's bits line by line.

use std::process::Command;

use parfor::kernels::{self, Isa};
use parfor::{Options, ReduceOp, Schedule};

/// Marks a child run, whose printed bits the parent reads.
const CHILD: &str = "PARFOR_ISA_TEST_CHILD";

/// Deterministic data in [0.5, 1.5) with all mantissa bits in use (a 64-bit LCG).
fn data(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            0.5 + (s >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

/// The lane model of src/kernels: element i into lane i mod `lanes`, then the lanes
/// combined pairwise (j with j + w for w = lanes/2 .. 1). One block only.
fn lane_model<T: Copy + std::ops::Add<Output = T>>(x: &[T], zero: T, lanes: usize) -> T {
    let mut acc = vec![zero; lanes];
    for (i, &v) in x.iter().enumerate() {
        acc[i % lanes] = acc[i % lanes] + v;
    }
    let mut w = lanes;
    while w > 1 {
        w /= 2;
        for j in 0..w {
            acc[j] = acc[j] + acc[j + w];
        }
    }
    acc[0]
}

/// Every result this level computes, one line each: "what = bits".
fn results() -> Vec<String> {
    let mut out = Vec::new();
    // 8 extra elements: every start within a 64-byte line (Vec<f64> is 8-aligned,
    // so the offsets 0..8 reach each of the 8 positions, whatever the base).
    let big = data(1_000_000 + 8, 1);
    let other = data(1_000_000 + 8, 2);
    let big32: Vec<f32> = big.iter().map(|&v| v as f32).collect();
    let ints: Vec<i64> = big
        .iter()
        .map(|&v| (v * 1e9) as i64 - 1_000_000_000)
        .collect();
    let ints32: Vec<i32> = ints.iter().map(|&v| v as i32).collect();
    for n in [
        0usize, 1, 7, 31, 32, 33, 63, 64, 65, 1000, 4097, 100_003, 1_000_000,
    ] {
        for off in 0..8 {
            let x = &big[off..off + n];
            let y = &other[off..off + n];
            let xf = &big32[off..off + n];
            out.push(format!(
                "n={n} off={off} kernels sum64={:016x} sum32={:08x} prod32={:08x} \
                 dot64={:016x} dot32={:08x} sumi64={:016x} prod64={:016x} prod32as64={:016x} \
                 sumi32as64={:016x}",
                kernels::sum(x).to_bits(),
                kernels::sum(xf).to_bits(),
                kernels::prod(xf).to_bits(),
                kernels::dot(x, y).to_bits(),
                kernels::dot(xf, &big32[off + 1..off + 1 + n]).to_bits(),
                kernels::sum(&ints[off..off + n]),
                kernels::prod(y).to_bits(),
                kernels::prod_as::<f32, f64>(xf).to_bits(),
                kernels::sum_as::<i32, i64>(&ints32[off..off + n]),
            ));
            if n > 0 {
                out.push(format!(
                    "n={n} off={off} kernels min64={:016x} max64={:016x} min32={:08x} max32={:08x}",
                    kernels::min(x).to_bits(),
                    kernels::max(x).to_bits(),
                    kernels::min(xf).to_bits(),
                    kernels::max(xf).to_bits(),
                ));
            }
            if (1..=4097).contains(&n) {
                // Golden order: one block, 32 lanes for 8-byte elements, 64 for f32.
                assert_eq!(
                    kernels::sum(x).to_bits(),
                    lane_model(x, 0.0f64, 32).to_bits(),
                    "f64 sum of {n} at offset {off} does not follow the lane model"
                );
                assert_eq!(
                    kernels::sum(xf).to_bits(),
                    lane_model(xf, 0.0f32, 64).to_bits(),
                    "f32 sum of {n} at offset {off} does not follow the lane model"
                );
            }
            if n >= 100_003 && off % 3 == 0 {
                for threads in [1, 2] {
                    let o = Options::new(threads, Schedule::Static, 0).expect("valid options");
                    let r = |op| parfor::reduce(x, op, &o).expect("reduce");
                    out.push(format!(
                        "n={n} off={off} threads={threads} reduce sum={:016x} prod={:016x} \
                         min={:016x} max={:016x} dot={:016x} sum32={:08x}",
                        r(ReduceOp::Sum).to_bits(),
                        r(ReduceOp::Prod).to_bits(),
                        r(ReduceOp::Min).to_bits(),
                        r(ReduceOp::Max).to_bits(),
                        parfor::dot(x, y, &o).expect("dot").to_bits(),
                        parfor::reduce(xf, ReduceOp::Sum, &o)
                            .expect("reduce")
                            .to_bits(),
                    ));
                }
            }
        }
    }
    out
}

/// Run by the parent once per level (and, as a plain test, at the default level):
/// the level is the one asked for, the sums follow the golden lane order, and the
/// bits go to stdout between markers.
#[test]
fn bits_at_this_level() {
    let asked = std::env::var("PARFOR_ISA").ok();
    let expected = match asked.as_deref().and_then(Isa::parse) {
        Some(l) if l <= kernels::best_isa() => l,
        _ => kernels::best_isa(),
    };
    assert_eq!(kernels::isa(), expected, "PARFOR_ISA={asked:?}");
    // The C function names the same level.
    // SAFETY: parfor_isa returns static NUL-terminated text.
    let c = unsafe { std::ffi::CStr::from_ptr(parfor::ffi::parfor_isa()) };
    assert_eq!(c.to_str().unwrap(), expected.name());
    let lines = results();
    if std::env::var_os(CHILD).is_some() {
        // On a line of its own: libtest has printed "test NAME ... " without a newline.
        println!("\nBEGIN-BITS level={}", kernels::isa());
        for l in &lines {
            println!("{l}");
        }
        println!("END-BITS");
    }
}

/// Runs `bits_at_this_level` in a child with PARFOR_ISA=`value`; returns (its
/// level line and bit lines, its stderr).
fn child(value: &str) -> (Vec<String>, String) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args([
            "--exact",
            "bits_at_this_level",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PARFOR_ISA", value)
        .env(CHILD, "1")
        .output()
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "child with PARFOR_ISA={value} failed:\n{stdout}\n{stderr}"
    );
    let lines: Vec<String> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("BEGIN-BITS"))
        .take_while(|l| *l != "END-BITS")
        .map(str::to_string)
        .collect();
    assert!(lines.len() > 100, "child printed no bits:\n{stdout}");
    (lines, stderr)
}

#[test]
fn every_level_gives_the_same_bits() {
    let levels = kernels::supported_isas();
    assert_eq!(levels[0], Isa::Baseline);
    let mut first: Option<(Isa, Vec<String>)> = None;
    for level in levels {
        let (lines, stderr) = child(level.name());
        assert_eq!(lines[0], format!("BEGIN-BITS level={level}"));
        assert!(
            !stderr.contains("PARFOR_ISA"),
            "a supported level warned: {stderr}"
        );
        match &first {
            None => first = Some((level, lines)),
            Some((l0, ref0)) => {
                assert_eq!(ref0.len(), lines.len());
                for (a, b) in ref0[1..].iter().zip(&lines[1..]) {
                    assert_eq!(a, b, "{l0} and {level} differ");
                }
            }
        }
    }
}

#[test]
fn a_bad_or_unsupported_value_warns_once_and_runs_the_best_level() {
    let best = kernels::best_isa();
    let mut bad = vec!["sse9".to_string(), "avx-512".to_string()];
    // A level above the CPU's, where there is one.
    if let Some(above) = Isa::ALL.into_iter().find(|&l| l > best) {
        bad.push(above.name().to_string());
    }
    for value in bad {
        let (lines, stderr) = child(&value);
        assert_eq!(lines[0], format!("BEGIN-BITS level={best}"), "{value}");
        let warnings = stderr.matches("parfor: PARFOR_ISA=").count();
        assert_eq!(warnings, 1, "PARFOR_ISA={value}: {stderr}");
        assert!(stderr.contains(&format!("running {best}")), "{stderr}");
    }
}
