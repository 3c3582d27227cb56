//! Golden bits: the exact results of float sums, dots and user reductions for fixed
//! inputs at lengths on both sides of the block-size thresholds (one block below
//! 96 KiB, the team from 192 KiB, 256 KiB blocks from 16 MiB: see `reduce::block_len`),
//! and of the same sums through parfor_reduce_array.
//!
//! These bits are part of the contract: every team size and schedule gives them, and
//! so must every later version. CHANGING A VALUE HERE IS A DELIBERATE, DOCUMENTED ACT:
//! only with a change of block sizes, lanes or trees that is announced in CHANGELOG.md
//! as changing results. Run with PARFOR_GOLDEN_PRINT=1 to print the current table.

mod common;

use common::opts;
use std::ffi::c_void;

use parfor::ffi::*;

/// Lengths around the thresholds for 8-byte elements (12288 = 96 KiB, 24576 = 192
/// KiB, 2^21 = 16 MiB) and the lane/group sizes (32, 256).
const LENGTHS: [usize; 10] = [
    1, 7, 255, 257, 12_287, 12_288, 24_577, 100_003, 2_097_152, 2_097_153,
];

fn input(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| ((i.wrapping_mul(7919)) % 10_007) as f64 * 1.0e-3 - 5.0 + i as f64 * 1e-9)
        .collect()
}

fn reduce<T: Copy + Default>(x: &[T], dtype: parfor_dtype, op: parfor_op, o: &parfor_options) -> T {
    let mut out = T::default();
    // SAFETY: a live slice of the dtype's type.
    let s = unsafe {
        parfor_reduce(
            x.as_ptr() as *const c_void,
            x.len(),
            dtype as i32,
            op as i32,
            o,
            &mut out as *mut T as *mut c_void,
        )
    };
    assert_eq!(s, parfor_status::PARFOR_OK);
    out
}

fn dot<T: Copy + Default>(a: &[T], dtype: parfor_dtype, o: &parfor_options) -> T {
    let mut out = T::default();
    // SAFETY: live slices.
    let s = unsafe {
        parfor_dot(
            a.as_ptr() as *const c_void,
            a.as_ptr() as *const c_void,
            a.len(),
            dtype as i32,
            o,
            &mut out as *mut T as *mut c_void,
        )
    };
    assert_eq!(s, parfor_status::PARFOR_OK);
    out
}

unsafe extern "C-unwind" fn fold(ctx: *mut c_void, b: usize, e: usize, acc: *mut c_void) -> i32 {
    // SAFETY: ctx is the input's Vec<f64>, acc one f64.
    let x = unsafe { &*(ctx as *const Vec<f64>) };
    let acc = acc as *mut f64;
    for v in &x[b..e] {
        // SAFETY: as above.
        unsafe { *acc += v * 0.5 };
    }
    0
}

unsafe extern "C-unwind" fn combine(_: *mut c_void, acc: *mut c_void, other: *const c_void) {
    // SAFETY: two f64 accumulators.
    unsafe { *(acc as *mut f64) += *(other as *const f64) };
}

#[allow(clippy::ptr_arg)] // the Vec is what the fold callback reads through ctx
fn reduce_with(x: &Vec<f64>, o: &parfor_options) -> f64 {
    let zero = 0.0f64;
    let mut out = 0.0f64;
    // SAFETY: the callbacks read x and write f64 accumulators.
    let s = unsafe {
        parfor_reduce_with(
            0,
            x.len(),
            &zero as *const f64 as *const c_void,
            8,
            o,
            Some(fold),
            Some(combine),
            x as *const Vec<f64> as *mut c_void,
            &mut out as *mut f64 as *mut c_void,
        )
    };
    assert_eq!(s, parfor_status::PARFOR_OK);
    out
}

/// Full sum through parfor_reduce_array of x viewed reversed twice (a reversed copy,
/// read backwards): must give the contiguous bits.
fn reduce_array_reversed(x: &[f64], o: &parfor_options) -> f64 {
    let rev: Vec<f64> = x.iter().rev().copied().collect();
    let shape = [x.len()];
    let strides = [-8isize];
    let a = parfor_array {
        data: rev.as_ptr().wrapping_add(x.len() - 1) as *mut c_void,
        dtype: parfor_dtype::PARFOR_F64 as i32,
        ndim: 1,
        shape: shape.as_ptr(),
        strides: strides.as_ptr(),
    };
    let mut out = 0.0f64;
    let y = parfor_array {
        data: &mut out as *mut f64 as *mut c_void,
        dtype: parfor_dtype::PARFOR_F64 as i32,
        ndim: 0,
        shape: std::ptr::null(),
        strides: std::ptr::null(),
    };
    // SAFETY: live buffers.
    let s =
        unsafe { parfor_reduce_array(&a, PARFOR_ALL_AXES, parfor_op::PARFOR_SUM as i32, o, &y) };
    assert_eq!(s, parfor_status::PARFOR_OK);
    out
}

/// (n, sum f64, sum f32, dot f64, dot f32, reduce_with f64) as bits.
type Row = (usize, u64, u32, u64, u32, u64);

fn row(n: usize, o: &parfor_options) -> Row {
    let x = input(n);
    let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let s = reduce(&x, parfor_dtype::PARFOR_F64, parfor_op::PARFOR_SUM, o);
    assert_eq!(reduce_array_reversed(&x, o).to_bits(), s.to_bits(), "n {n}");
    (
        n,
        s.to_bits(),
        reduce(&xf, parfor_dtype::PARFOR_F32, parfor_op::PARFOR_SUM, o).to_bits(),
        dot(&x, parfor_dtype::PARFOR_F64, o).to_bits(),
        dot(&xf, parfor_dtype::PARFOR_F32, o).to_bits(),
        reduce_with(&x, o).to_bits(),
    )
}

const GOLDEN: &[Row] = &[
    // (n, sum f64, sum f32, dot f64, dot f32, reduce_with f64), bits at the commit that
    // introduced f64-lane pairwise sums (issue 12).
    (
        1,
        0xc014000000000000,
        0xc0a00000,
        0x4039000000000000,
        0x41c80000,
        0xc004000000000000,
    ),
    (
        7,
        0x3ff353f7d47c3274,
        0x3f9a9fbe,
        0x4052853d537dcc55,
        0x429429eb,
        0x3fe353f7d47c3274,
    ),
    (
        255,
        0xc01ac493289143a2,
        0xc0d6249a,
        0x40a0c09ddb06201e,
        0x450604ef,
        0xc00ac493289143a0,
    ),
    (
        257,
        0xc0073b531ae2b7d2,
        0xc039da9a,
        0x40a0d35347daa884,
        0x45069a9a,
        0xbff73b531ae2b7ce,
    ),
    (
        12287,
        0x404abcdc7f49845e,
        0x4255e6e4,
        0x40f9089c26b4ef8a,
        0x47c844e1,
        0x403abcdc7f498466,
    ),
    (
        12288,
        0x404995705b18108c,
        0x424cab83,
        0x40f908f1614f35ac,
        0x47c8478b,
        0x403995705b181094,
    ),
    (
        24577,
        0x40555c7aea682519,
        0x42aae3d7,
        0x4109097bdeaf813a,
        0x48484be0,
        0x40455c7aea682524,
    ),
    (
        100003,
        0x40732d71a9fcb647,
        0x43996b8e,
        0x412977c18303754c,
        0x494bbe0c,
        0x40632d71a9fcb650,
    ),
    (
        2097152,
        0x40c09a2dd9b9e803,
        0x4604d16f,
        0x4170b0a6c90ada59,
        0x4b858536,
        0x40b09a2dd9b9e80f,
    ),
    (
        2097153,
        0x40c09c85abc1f6df,
        0x4604e42d,
        0x4170b0a82864fddb,
        0x4b858541,
        0x40b09c85abc1f6ea,
    ),
];

#[test]
fn golden_bits_hold_for_every_team_size_and_schedule() {
    if std::env::var_os("PARFOR_GOLDEN_PRINT").is_some() {
        for &n in &LENGTHS {
            let (n, a, b, c, d, e) = row(n, &opts(1, parfor_schedule::PARFOR_SCHEDULE_AUTO, 0));
            println!("    ({n}, {a:#018x}, {b:#010x}, {c:#018x}, {d:#010x}, {e:#018x}),");
        }
    }
    let scheds = [
        parfor_schedule::PARFOR_SCHEDULE_AUTO,
        parfor_schedule::PARFOR_SCHEDULE_STATIC,
        parfor_schedule::PARFOR_SCHEDULE_DYNAMIC,
        parfor_schedule::PARFOR_SCHEDULE_GUIDED,
    ];
    for (k, want) in GOLDEN.iter().enumerate() {
        for threads in [1usize, 2, 3, 4] {
            let o = opts(threads, scheds[(threads + k) % 4], 0);
            assert_eq!(row(want.0, &o), *want, "n {} on {threads} threads", want.0);
        }
    }
}
