//! Strided N-d reductions through the C ABI (parfor_reduce_array,
//! parfor_argreduce_array, parfor_moments_array): random shapes up to 5-D and random
//! axis sets, each logical array stored in C order, Fortran order, reversed (a
//! reversed view of a reversed copy), padded with steps of 2 and both signs, and
//! with broadcast (stride 0) axes. Checked against a serial strided reference (exact
//! for integers and for float data whose sums are exact), against parfor_reduce of
//! each slice gathered in logical order (same bits: the reproducibility contract),
//! and for the same bits in every layout, team sizes 1..4 and every schedule. Then
//! every bad input: status, message, output untouched.

mod common;

use common::{last_error, opts, Rng};
use std::ffi::c_void;

use parfor::ffi::*;

const SCHEDULES: [parfor_schedule; 4] = [
    parfor_schedule::PARFOR_SCHEDULE_AUTO,
    parfor_schedule::PARFOR_SCHEDULE_STATIC,
    parfor_schedule::PARFOR_SCHEDULE_DYNAMIC,
    parfor_schedule::PARFOR_SCHEDULE_GUIDED,
];

/// One physical layout of a logical array: a buffer, the offset of element 0 and
/// element strides.
struct Stored<T> {
    buf: Vec<T>,
    offset: usize,
    strides: Vec<isize>,
}

fn c_strides(shape: &[usize]) -> Vec<isize> {
    let mut s = vec![0isize; shape.len()];
    let mut acc = 1isize;
    for k in (0..shape.len()).rev() {
        s[k] = acc;
        acc *= shape[k].max(1) as isize;
    }
    s
}

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for k in (0..shape.len()).rev() {
        idx[k] = i % shape[k];
        i /= shape[k];
    }
    idx
}

/// Stores the C-order logical values `v` of `shape` with element strides `strides`
/// from element `offset` of a buffer of `len` (filled with `pad` elsewhere).
fn store<T: Copy>(
    v: &[T],
    shape: &[usize],
    strides: Vec<isize>,
    offset: usize,
    len: usize,
    pad: T,
) -> Stored<T> {
    let mut buf = vec![pad; len];
    for (i, &x) in v.iter().enumerate() {
        let idx = unravel(i, shape);
        let off = offset as isize
            + idx
                .iter()
                .zip(&strides)
                .map(|(&a, &s)| a as isize * s)
                .sum::<isize>();
        buf[off as usize] = x;
    }
    Stored {
        buf,
        offset,
        strides,
    }
}

/// The layouts under test for one logical array.
fn layouts<T: Copy>(v: &[T], shape: &[usize], pad: T) -> Vec<(&'static str, Stored<T>)> {
    let n = v.len();
    let d = shape.len();
    let c = c_strides(shape);
    let mut f = vec![0isize; d];
    let mut acc = 1isize;
    for k in 0..d {
        f[k] = acc;
        acc *= shape[k].max(1) as isize;
    }
    // Padded: every axis one longer, steps of 2.
    let big: Vec<usize> = shape.iter().map(|&e| e + 1).collect();
    let bc = c_strides(&big);
    let padded: Vec<isize> = bc.iter().map(|&s| 2 * s).collect();
    let plen = 2 * big.iter().product::<usize>();
    let neg: Vec<isize> = padded.iter().map(|&s| -s).collect();
    let reach: isize = shape
        .iter()
        .zip(&padded)
        .map(|(&e, &s)| (e.max(1) as isize - 1) * s)
        .sum();
    vec![
        ("C", store(v, shape, c.clone(), 0, n, pad)),
        ("F", store(v, shape, f, 0, n, pad)),
        (
            "reversed",
            store(
                v,
                shape,
                c.iter().map(|&s| -s).collect(),
                n.saturating_sub(1),
                n.max(1),
                pad,
            ),
        ),
        ("padded", store(v, shape, padded, 0, plen, pad)),
        (
            "padded-negative",
            store(v, shape, neg, reach as usize, plen, pad),
        ),
    ]
}

fn arr<T>(
    buf: &[T],
    offset: usize,
    dtype: parfor_dtype,
    shape: &[usize],
    strides: &[isize],
) -> parfor_array {
    parfor_array {
        data: buf.as_ptr().wrapping_add(offset) as *mut c_void,
        dtype: dtype as i32,
        ndim: shape.len(),
        shape: shape.as_ptr(),
        strides: strides.as_ptr(),
    }
}

/// As [`arr`] for an output, whose buffer the library writes.
fn arr_out<T>(
    buf: &mut [T],
    dtype: parfor_dtype,
    shape: &[usize],
    strides: &[isize],
) -> parfor_array {
    parfor_array {
        data: buf.as_mut_ptr() as *mut c_void,
        dtype: dtype as i32,
        ndim: shape.len(),
        shape: shape.as_ptr(),
        strides: strides.as_ptr(),
    }
}

fn byte_strides<T>(s: &[isize]) -> Vec<isize> {
    s.iter()
        .map(|&v| v * std::mem::size_of::<T>() as isize)
        .collect()
}

/// Reduces the stored array over `mask` into a fresh C-order output of type A.
fn reduce_stored<T, A: Copy + Default>(
    st: &Stored<T>,
    dtype: parfor_dtype,
    shape: &[usize],
    mask: u64,
    op: parfor_op,
    out_dtype: parfor_dtype,
    o: &parfor_options,
) -> (parfor_status, Vec<A>) {
    let kept: Vec<usize> = (0..shape.len())
        .filter(|&k| mask & (1 << k) == 0)
        .map(|k| shape[k])
        .collect();
    let m: usize = kept.iter().product();
    let mut out = vec![A::default(); m];
    let bs = byte_strides::<T>(&st.strides);
    let x = arr(&st.buf, st.offset, dtype, shape, &bs);
    let os = byte_strides::<A>(&c_strides(&kept));
    let y = arr_out(&mut out, out_dtype, &kept, &os);
    // SAFETY: both arrays describe live buffers of their dtypes.
    let s = unsafe { parfor_reduce_array(&x, mask, op as i32, o, &y) };
    (s, out)
}

/// Logical slices of `v` (C order) for each output of a reduction over `mask`.
fn slices<T: Copy>(v: &[T], shape: &[usize], mask: u64) -> Vec<Vec<T>> {
    let kept: Vec<usize> = (0..shape.len()).filter(|&k| mask & (1 << k) == 0).collect();
    let red: Vec<usize> = (0..shape.len()).filter(|&k| mask & (1 << k) != 0).collect();
    let ks: Vec<usize> = kept.iter().map(|&k| shape[k]).collect();
    let rs: Vec<usize> = red.iter().map(|&k| shape[k]).collect();
    let c = c_strides(shape);
    let m: usize = ks.iter().product();
    let n: usize = rs.iter().product();
    (0..m)
        .map(|o| {
            let oi = unravel(o, &ks);
            (0..n)
                .map(|r| {
                    let ri = unravel(r, &rs);
                    let mut off = 0isize;
                    for (j, &k) in kept.iter().enumerate() {
                        off += oi[j] as isize * c[k];
                    }
                    for (j, &k) in red.iter().enumerate() {
                        off += ri[j] as isize * c[k];
                    }
                    v[off as usize]
                })
                .collect()
        })
        .collect()
}

fn random_shape(rng: &mut Rng) -> Vec<usize> {
    let d = rng.below(6) as usize;
    (0..d)
        .map(|_| 1 + rng.below(if d <= 2 { 300 } else { 9 }) as usize)
        .collect()
}

/// A C-side parfor_reduce of one contiguous slice.
fn reduce_1d<T: Copy + Default>(x: &[T], dtype: parfor_dtype, op: parfor_op) -> T {
    let mut out = T::default();
    let o = opts(1, SCHEDULES[0], 0);
    // SAFETY: a live slice of its dtype.
    let s = unsafe {
        parfor_reduce(
            x.as_ptr() as *const c_void,
            x.len(),
            dtype as i32,
            op as i32,
            &o,
            &mut out as *mut T as *mut c_void,
        )
    };
    assert_eq!(s, parfor_status::PARFOR_OK, "{}", last_error());
    out
}

#[test]
fn f64_views_match_the_1d_reduction_and_each_other() {
    let mut rng = Rng(7);
    for case in 0..60 {
        let shape = random_shape(&mut rng);
        let n: usize = shape.iter().product();
        // Quarter-integers with NaNs sprinkled in for the NaN operators.
        let v: Vec<f64> = (0..n)
            .map(|_| {
                if rng.below(23) == 0 {
                    f64::NAN
                } else {
                    rng.below(4001) as f64 * 0.25 - 500.0 + (rng.below(3) as f64) * 1e-7
                }
            })
            .collect();
        let d = shape.len();
        let mask = if d == 0 { 0 } else { rng.below(1 << d) };
        let sl = slices(&v, &shape, mask);
        let stores = layouts(&v, &shape, -7.0);
        for op in [
            parfor_op::PARFOR_SUM,
            parfor_op::PARFOR_NAN_SUM,
            parfor_op::PARFOR_MIN,
            parfor_op::PARFOR_NAN_MAX,
            parfor_op::PARFOR_PROD,
        ] {
            let expect: Vec<u64> = sl
                .iter()
                .map(|s| reduce_1d(s, parfor_dtype::PARFOR_F64, op).to_bits())
                .collect();
            if op == parfor_op::PARFOR_NAN_SUM {
                // Independent reference: the non-NaN values summed in f64 with a
                // Neumaier-free check: quarter-integers plus tiny parts, within 1e-6.
                for (s, &e) in sl.iter().zip(&expect) {
                    let r: f64 = s.iter().filter(|v| !v.is_nan()).sum();
                    assert!(
                        (f64::from_bits(e) - r).abs() <= 1e-6 * (1.0 + r.abs()),
                        "case {case}"
                    );
                }
            }
            for (name, st) in &stores {
                for threads in 1..=4 {
                    let sched = SCHEDULES[(threads + case) % 4];
                    let o = opts(threads, sched, if sched == SCHEDULES[2] { 3 } else { 0 });
                    let (s, got) = reduce_stored::<f64, f64>(
                        st,
                        parfor_dtype::PARFOR_F64,
                        &shape,
                        mask,
                        op,
                        parfor_dtype::PARFOR_F64,
                        &o,
                    );
                    if (op == parfor_op::PARFOR_MIN || op == parfor_op::PARFOR_NAN_MAX)
                        && n == 0
                        && mask != 0
                    {
                        assert_eq!(s, parfor_status::PARFOR_ERR_EMPTY);
                        continue;
                    }
                    assert_eq!(s, parfor_status::PARFOR_OK, "{}", last_error());
                    let bits: Vec<u64> = got.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(bits, expect, "case {case} {name} shape {shape:?} mask {mask:#x} {op:?} {threads} threads");
                }
            }
        }
    }
}

#[test]
fn integer_views_are_exact_with_wider_accumulators() {
    let mut rng = Rng(11);
    for case in 0..60 {
        let shape = random_shape(&mut rng);
        let n: usize = shape.iter().product();
        let v: Vec<i32> = (0..n).map(|_| rng.next() as i32).collect();
        let d = shape.len();
        let mask = if d == 0 { 0 } else { rng.below(1 << d) };
        let sl = slices(&v, &shape, mask);
        let sum64: Vec<i64> = sl
            .iter()
            .map(|s| s.iter().map(|&x| x as i64).fold(0i64, i64::wrapping_add))
            .collect();
        let prod64: Vec<i64> = sl
            .iter()
            .map(|s| s.iter().fold(1i64, |a, &x| a.wrapping_mul(x as i64)))
            .collect();
        let any: Vec<u8> = sl
            .iter()
            .map(|s| u8::from(s.iter().any(|&x| x != 0)))
            .collect();
        let max: Vec<i32> = sl
            .iter()
            .map(|s| s.iter().copied().max().unwrap_or(0))
            .collect();
        for (name, st) in &layouts(&v, &shape, 99) {
            let o = opts(1 + case % 4, SCHEDULES[case % 4], 0);
            let t = parfor_dtype::PARFOR_I32;
            let (s, got) = reduce_stored::<i32, i64>(
                st,
                t,
                &shape,
                mask,
                parfor_op::PARFOR_SUM,
                parfor_dtype::PARFOR_I64,
                &o,
            );
            assert_eq!(s, parfor_status::PARFOR_OK, "{}", last_error());
            assert_eq!(got, sum64, "case {case} {name}");
            let (_, got) = reduce_stored::<i32, i64>(
                st,
                t,
                &shape,
                mask,
                parfor_op::PARFOR_PROD,
                parfor_dtype::PARFOR_I64,
                &o,
            );
            assert_eq!(got, prod64, "case {case} {name}");
            let (_, got) = reduce_stored::<i32, u8>(
                st,
                t,
                &shape,
                mask,
                parfor_op::PARFOR_LOGICAL_OR,
                parfor_dtype::PARFOR_U8,
                &o,
            );
            assert_eq!(got, any, "case {case} {name}");
            let (s, got) =
                reduce_stored::<i32, i32>(st, t, &shape, mask, parfor_op::PARFOR_MAX, t, &o);
            if n == 0 && mask != 0 {
                assert_eq!(s, parfor_status::PARFOR_ERR_EMPTY);
            } else {
                assert_eq!(got, max, "case {case} {name}");
            }
            // Integer sums into F64: each element rounded to f64, then summed; these
            // are below 2^53 in magnitude, so exact.
            let (_, got) = reduce_stored::<i32, f64>(
                st,
                t,
                &shape,
                mask,
                parfor_op::PARFOR_SUM,
                parfor_dtype::PARFOR_F64,
                &o,
            );
            let want: Vec<f64> = sum64.iter().map(|&s| s as f64).collect();
            assert_eq!(got, want, "case {case} {name}");
        }
    }
    // u8 into U64 does not wrap at 256: the first row.
    let x = vec![200u8; 1000];
    let st = Stored {
        buf: x,
        offset: 0,
        strides: vec![1],
    };
    let o = opts(0, SCHEDULES[0], 0);
    let (s, got) = reduce_stored::<u8, u64>(
        &st,
        parfor_dtype::PARFOR_U8,
        &[1000],
        ALL,
        parfor_op::PARFOR_SUM,
        parfor_dtype::PARFOR_U64,
        &o,
    );
    assert_eq!((s, got), (parfor_status::PARFOR_OK, vec![200_000u64]));
}

const ALL: u64 = PARFOR_ALL_AXES;

#[test]
fn broadcast_axes_read_one_element_many_times() {
    // Logical 40 x 3000 array whose rows are all the same 3000 values (stride 0).
    let row: Vec<f32> = (0..3000).map(|i| (i % 97) as f32 * 0.5).collect();
    let shape = [40usize, 3000];
    let logical: Vec<f32> = (0..40).flat_map(|_| row.iter().copied()).collect();
    let bs = [0isize, 4];
    for mask in [1u64, 2, 3] {
        let sl = slices(&logical, &shape, mask);
        let expect: Vec<u32> = sl
            .iter()
            .map(|s| reduce_1d(s, parfor_dtype::PARFOR_F32, parfor_op::PARFOR_SUM).to_bits())
            .collect();
        let kept: Vec<usize> = (0..2)
            .filter(|&k| mask & (1 << k) == 0)
            .map(|k| shape[k])
            .collect();
        for threads in 1..=4 {
            let mut out = vec![0f32; kept.iter().product()];
            let x = arr(&row, 0, parfor_dtype::PARFOR_F32, &shape, &bs);
            let os = byte_strides::<f32>(&c_strides(&kept));
            let y = arr_out(&mut out, parfor_dtype::PARFOR_F32, &kept, &os);
            let o = opts(threads, SCHEDULES[threads % 4], 0);
            // SAFETY: live buffers.
            let s = unsafe { parfor_reduce_array(&x, mask, parfor_op::PARFOR_SUM as i32, &o, &y) };
            assert_eq!(s, parfor_status::PARFOR_OK, "{}", last_error());
            out.truncate(expect.len());
            let bits: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
            assert_eq!(bits, expect, "mask {mask} threads {threads}");
        }
    }
}

#[test]
fn large_columns_and_rows_are_reproducible() {
    // 700 x 900 f64 (5 MB): column sums of C order (strided slices split by outputs)
    // and the full sum (one slice split by blocks) in C and F order, teams 1..4.
    let (r, c) = (700usize, 900usize);
    let v: Vec<f64> = (0..r * c)
        .map(|i| ((i * 7919) % 10007) as f64 * 1e-3 - 5.0)
        .collect();
    let shape = [r, c];
    let stores = layouts(&v, &shape, 0.0);
    for mask in [1u64, 2, 3] {
        let sl = slices(&v, &shape, mask);
        let expect: Vec<u64> = sl
            .iter()
            .map(|s| reduce_1d(s, parfor_dtype::PARFOR_F64, parfor_op::PARFOR_SUM).to_bits())
            .collect();
        for (name, st) in stores.iter().take(2) {
            for threads in 1..=4 {
                for sched in SCHEDULES {
                    let o = opts(threads, sched, 0);
                    let (s, got) = reduce_stored::<f64, f64>(
                        st,
                        parfor_dtype::PARFOR_F64,
                        &shape,
                        mask,
                        parfor_op::PARFOR_SUM,
                        parfor_dtype::PARFOR_F64,
                        &o,
                    );
                    assert_eq!(s, parfor_status::PARFOR_OK);
                    let bits: Vec<u64> = got.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(
                        bits, expect,
                        "{name} mask {mask} threads {threads} {sched:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn argreduce_matches_a_serial_scan() {
    let mut rng = Rng(3);
    for case in 0..40 {
        let shape = random_shape(&mut rng);
        let d = shape.len();
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n)
            .map(|_| {
                if rng.below(9) == 0 {
                    f64::NAN
                } else {
                    rng.below(50) as f64
                }
            })
            .collect();
        let axis = if d == 0 || rng.below(3) == 0 {
            ALL
        } else {
            rng.below(d as u64)
        };
        let mask = if axis == ALL {
            if d == 0 {
                0
            } else {
                (1u64 << d) - 1
            }
        } else {
            1 << axis
        };
        let sl = slices(&v, &shape, mask);
        let kept: Vec<usize> = (0..d)
            .filter(|&k| mask & (1 << k) == 0)
            .map(|k| shape[k])
            .collect();
        for op in [parfor_op::PARFOR_MIN, parfor_op::PARFOR_NAN_MAX] {
            let want: Option<Vec<i64>> = sl
                .iter()
                .map(|s| {
                    if op == parfor_op::PARFOR_MIN {
                        let first_nan = s.iter().position(|v| v.is_nan());
                        let m = s.iter().copied().fold(f64::INFINITY, f64::min);
                        Some(first_nan.or_else(|| s.iter().position(|&v| v == m))? as i64)
                    } else {
                        let m = s
                            .iter()
                            .copied()
                            .filter(|v| !v.is_nan())
                            .fold(f64::NEG_INFINITY, f64::max);
                        s.iter().position(|&v| v == m).map(|p| p as i64)
                    }
                })
                .collect();
            for (name, st) in &layouts(&v, &shape, 0.0) {
                let mut out = vec![-5i64; kept.iter().product()];
                let bs = byte_strides::<f64>(&st.strides);
                let x = arr(&st.buf, st.offset, parfor_dtype::PARFOR_F64, &shape, &bs);
                let os = byte_strides::<i64>(&c_strides(&kept));
                let y = arr_out(&mut out, parfor_dtype::PARFOR_I64, &kept, &os);
                let o = opts(1 + case % 4, SCHEDULES[case % 4], 0);
                // SAFETY: live buffers.
                let s = unsafe { parfor_argreduce_array(&x, axis, op as i32, &o, &y) };
                match &want {
                    Some(w) if n > 0 => {
                        assert_eq!(s, parfor_status::PARFOR_OK, "{}", last_error());
                        assert_eq!(&out, w, "case {case} {name} {op:?}");
                    }
                    _ => {
                        assert_eq!(s, parfor_status::PARFOR_ERR_EMPTY, "case {case} {name}");
                        assert!(out.iter().all(|&v| v == -5), "written on failure");
                    }
                }
            }
        }
    }
}

#[test]
fn moments_are_two_pass_and_layout_independent() {
    let mut rng = Rng(5);
    for case in 0..30 {
        let shape = random_shape(&mut rng);
        let d = shape.len();
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n)
            .map(|_| {
                if rng.below(11) == 0 {
                    f64::NAN
                } else {
                    rng.below(1000) as f64 * 0.125
                }
            })
            .collect();
        let mask = if d == 0 { 0 } else { rng.below(1 << d) };
        let sl = slices(&v, &shape, mask);
        let kept: Vec<usize> = (0..d)
            .filter(|&k| mask & (1 << k) == 0)
            .map(|k| shape[k])
            .collect();
        let m: usize = kept.iter().product();
        let mut first: Option<(Vec<u64>, Vec<u64>, Vec<u64>)> = None;
        for (name, st) in &layouts(&v, &shape, 0.0) {
            let (mut cnt, mut mean, mut m2) = (vec![0u64; m], vec![0f64; m], vec![0f64; m]);
            let bs = byte_strides::<f64>(&st.strides);
            let x = arr(&st.buf, st.offset, parfor_dtype::PARFOR_F64, &shape, &bs);
            let os = byte_strides::<f64>(&c_strides(&kept));
            let yc = arr_out(&mut cnt, parfor_dtype::PARFOR_U64, &kept, &os);
            let ym = arr_out(&mut mean, parfor_dtype::PARFOR_F64, &kept, &os);
            let y2 = arr_out(&mut m2, parfor_dtype::PARFOR_F64, &kept, &os);
            let o = opts(1 + case % 4, SCHEDULES[case % 4], 0);
            // SAFETY: live buffers.
            let s = unsafe {
                parfor_moments_array(&x, mask, PARFOR_MOMENTS_SKIP_NAN, &o, &yc, &ym, &y2)
            };
            assert_eq!(s, parfor_status::PARFOR_OK, "{}", last_error());
            for (i, s) in sl.iter().enumerate() {
                let good: Vec<f64> = s.iter().copied().filter(|v| !v.is_nan()).collect();
                assert_eq!(cnt[i], good.len() as u64);
                if good.is_empty() {
                    assert!(mean[i].is_nan() && m2[i].is_nan());
                    continue;
                }
                // Eighths below 2^20: the sum is exact, the mean correctly rounded.
                let mu = good.iter().sum::<f64>() / good.len() as f64;
                assert_eq!(mean[i], mu, "case {case} {name}");
                let r: f64 = good.iter().map(|v| (v - mu) * (v - mu)).sum();
                assert!(
                    (m2[i] - r).abs() <= 1e-9 * (1.0 + r),
                    "case {case} {name}: {} vs {r}",
                    m2[i]
                );
            }
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
            let now = (cnt.clone(), bits(&mean), bits(&m2));
            if let Some(f) = &first {
                assert_eq!(f, &now, "case {case} {name}");
            } else {
                first = Some(now);
            }
            cnt.clear();
            mean.clear();
            m2.clear();
        }
    }
}

/// Calls parfor_reduce_array on f64 x (8 elements) into a 2-element f64 out filled
/// with a sentinel, after `edit` changes the arrays; checks status, message and out.
fn bad(
    what: &str,
    status: parfor_status,
    message: &str,
    edit: impl FnOnce(&mut parfor_array, &mut parfor_array, &mut u64, &mut i32),
) {
    let x = [1.0f64; 8];
    let mut out = [-3.5f64; 4];
    let shape = [2usize, 4];
    let strides = [32isize, 8];
    let oshape = [2usize];
    let ostrides = [8isize];
    let mut xa = arr(&x, 0, parfor_dtype::PARFOR_F64, &shape, &strides);
    let mut oa = arr_out(&mut out, parfor_dtype::PARFOR_F64, &oshape, &ostrides);
    let (mut axes, mut op) = (2u64, parfor_op::PARFOR_SUM as i32);
    edit(&mut xa, &mut oa, &mut axes, &mut op);
    // SAFETY: the arrays describe live buffers, or carry the flaw under test, which
    // the library must reject before reading.
    let s = unsafe { parfor_reduce_array(&xa, axes, op, std::ptr::null(), &oa) };
    assert_eq!(s, status, "{what}: {}", last_error());
    let e = last_error();
    assert!(
        e.contains(message),
        "{what}: message {e:?} lacks {message:?}"
    );
    if status == parfor_status::PARFOR_OK {
        assert_eq!(out, [4.0, 4.0, -3.5, -3.5], "{what}");
    } else {
        assert!(out.iter().all(|&v| v == -3.5), "{what}: out written");
    }
}

#[test]
fn bad_inputs_are_refused_and_nothing_is_written() {
    use parfor_status::*;
    // A good call first, so that the checks below are not vacuous.
    bad("good", PARFOR_OK, "", |_, o, _, _| o.ndim = 1);
    static BIG: [usize; 2] = [usize::MAX / 2, 4];
    static HUGE_STRIDE: [isize; 2] = [isize::MAX / 2, 8];
    static ODD_STRIDE: [isize; 2] = [32, 4];
    static SHAPE3: [usize; 1] = [3];
    static SHAPE33: [usize; 33] = [1; 33];
    static STRIDE33: [isize; 33] = [8; 33];
    bad(
        "NULL x data",
        PARFOR_ERR_NULL_ARGUMENT,
        "x->data",
        |x, _, _, _| x.data = std::ptr::null_mut(),
    );
    bad(
        "NULL out data",
        PARFOR_ERR_NULL_ARGUMENT,
        "out->data",
        |_, o, _, _| o.data = std::ptr::null_mut(),
    );
    bad(
        "NULL shape",
        PARFOR_ERR_NULL_ARGUMENT,
        "x->shape",
        |x, _, _, _| x.shape = std::ptr::null(),
    );
    bad(
        "NULL strides",
        PARFOR_ERR_NULL_ARGUMENT,
        "out->strides",
        |_, o, _, _| o.strides = std::ptr::null(),
    );
    bad(
        "ndim 33",
        PARFOR_ERR_INVALID_ARGUMENT,
        "PARFOR_MAX_DIMS",
        |x, _, _, _| {
            x.ndim = 33;
            x.shape = SHAPE33.as_ptr();
            x.strides = STRIDE33.as_ptr();
        },
    );
    bad(
        "axis out of range",
        PARFOR_ERR_INVALID_ARGUMENT,
        "bit 2",
        |_, _, a, _| *a = 4,
    );
    bad(
        "out shape",
        PARFOR_ERR_INVALID_ARGUMENT,
        "has shape [3]",
        |_, o, _, _| o.shape = SHAPE3.as_ptr(),
    );
    bad(
        "out ndim",
        PARFOR_ERR_INVALID_ARGUMENT,
        "ndim 0",
        |_, o, _, _| o.ndim = 0,
    );
    bad(
        "extent overflow",
        PARFOR_ERR_INVALID_ARGUMENT,
        "overflows size_t",
        |x, _, _, _| x.shape = BIG.as_ptr(),
    );
    bad(
        "offset overflow",
        PARFOR_ERR_INVALID_ARGUMENT,
        "PTRDIFF_MAX",
        |x, _, _, _| {
            static SHAPE: [usize; 2] = [4, 4];
            x.shape = SHAPE.as_ptr();
            x.strides = HUGE_STRIDE.as_ptr();
        },
    );
    bad(
        "misaligned data",
        PARFOR_ERR_MISALIGNED,
        "x->data",
        |x, _, _, _| x.data = (x.data as usize + 4) as *mut c_void,
    );
    bad(
        "misaligned stride",
        PARFOR_ERR_MISALIGNED,
        "x->strides[1]",
        |x, _, _, _| x.strides = ODD_STRIDE.as_ptr(),
    );
    bad(
        "overlap",
        PARFOR_ERR_INVALID_ARGUMENT,
        "out overlaps x",
        |x, o, _, _| o.data = x.data,
    );
    bad(
        "accumulator",
        PARFOR_ERR_INVALID_ARGUMENT,
        "PARFOR_I32 cannot hold PARFOR_SUM of PARFOR_F64",
        |_, o, _, _| o.dtype = parfor_dtype::PARFOR_I32 as i32,
    );
    bad(
        "bad dtype",
        PARFOR_ERR_INVALID_ARGUMENT,
        "x->dtype is 77",
        |x, _, _, _| x.dtype = 77,
    );
    bad(
        "bad op",
        PARFOR_ERR_INVALID_ARGUMENT,
        "not a parfor_op (0..=12)",
        |_, _, _, op| *op = 13,
    );
    bad(
        "bitwise on float",
        PARFOR_ERR_INVALID_ARGUMENT,
        "PARFOR_BIT_OR is not defined for PARFOR_F64",
        |_, _, _, op| *op = parfor_op::PARFOR_BIT_OR as i32,
    );
    bad(
        "empty min",
        PARFOR_ERR_EMPTY,
        "zero elements",
        |x, _, _, op| {
            static SHAPE: [usize; 2] = [2, 0];
            x.shape = SHAPE.as_ptr();
            *op = parfor_op::PARFOR_MIN as i32;
        },
    );
    // NULL x / out themselves.
    let mut out = [0f64; 1];
    let oa = arr_out(&mut out, parfor_dtype::PARFOR_F64, &[], &[]);
    // SAFETY: NULL is what is under test.
    let s = unsafe { parfor_reduce_array(std::ptr::null(), ALL, 0, std::ptr::null(), &oa) };
    assert_eq!(s, PARFOR_ERR_NULL_ARGUMENT);
    assert!(last_error().contains("`x`"));
    let s = unsafe { parfor_reduce_array(&oa, ALL, 0, std::ptr::null(), std::ptr::null()) };
    assert_eq!(s, PARFOR_ERR_NULL_ARGUMENT);
    assert!(last_error().contains("`out`"));
    // argreduce: index dtype and op checked.
    let x = [1.0f64, 2.0];
    let xa = arr(&x, 0, parfor_dtype::PARFOR_F64, &[2], &[8]);
    let mut idx = [-1i64];
    let ia = arr_out(&mut idx, parfor_dtype::PARFOR_F64, &[], &[]);
    let s = unsafe {
        parfor_argreduce_array(
            &xa,
            ALL,
            parfor_op::PARFOR_MIN as i32,
            std::ptr::null(),
            &ia,
        )
    };
    assert_eq!(s, PARFOR_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("PARFOR_I64 or PARFOR_U64"));
    let ia = arr_out(&mut idx, parfor_dtype::PARFOR_I64, &[], &[]);
    let s = unsafe {
        parfor_argreduce_array(
            &xa,
            ALL,
            parfor_op::PARFOR_SUM as i32,
            std::ptr::null(),
            &ia,
        )
    };
    assert_eq!(s, PARFOR_ERR_INVALID_ARGUMENT);
    let s = unsafe {
        parfor_argreduce_array(&xa, 1, parfor_op::PARFOR_MIN as i32, std::ptr::null(), &ia)
    };
    assert_eq!(s, PARFOR_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("axis is 1"));
    let nan = [f64::NAN, f64::NAN];
    let na = arr(&nan, 0, parfor_dtype::PARFOR_F64, &[2], &[8]);
    let s = unsafe {
        parfor_argreduce_array(
            &na,
            0,
            parfor_op::PARFOR_NAN_MAX as i32,
            std::ptr::null(),
            &ia,
        )
    };
    assert_eq!(s, PARFOR_ERR_EMPTY);
    assert_eq!(idx[0], -1);
    // moments: mean dtype, flags.
    let mut mean = [7.0f32];
    let ma = arr_out(&mut mean, parfor_dtype::PARFOR_I32, &[], &[]);
    let s = unsafe {
        parfor_moments_array(
            &xa,
            ALL,
            0,
            std::ptr::null(),
            std::ptr::null(),
            &ma,
            std::ptr::null(),
        )
    };
    assert_eq!(s, PARFOR_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("mean->dtype"));
    let ma = arr_out(&mut mean, parfor_dtype::PARFOR_F32, &[], &[]);
    let s = unsafe {
        parfor_moments_array(
            &xa,
            ALL,
            2,
            std::ptr::null(),
            std::ptr::null(),
            &ma,
            std::ptr::null(),
        )
    };
    assert_eq!(s, PARFOR_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("flags"));
    assert_eq!(mean[0], 7.0);
    let s = unsafe {
        parfor_moments_array(
            &xa,
            ALL,
            0,
            std::ptr::null(),
            std::ptr::null(),
            &ma,
            std::ptr::null(),
        )
    };
    assert_eq!(s, PARFOR_OK);
    assert_eq!(mean[0], 1.5);
}

/// Reduces `x` (a matrix of `rows` x `cols` elements of T stored with element
/// strides `strides`, from `buf[offset]`) over axis `axis` into a fresh vector of A:
/// the raw bytes of the output.
#[allow(clippy::too_many_arguments)]
fn reduce_matrix<T, A: Copy + Default>(
    buf: &[T],
    offset: usize,
    shape: &[usize],
    strides: &[isize],
    dtype: parfor_dtype,
    mask: u64,
    op: parfor_op,
    out_dtype: parfor_dtype,
    o: &parfor_options,
) -> (parfor_status, Vec<u8>) {
    let kept: Vec<usize> = (0..shape.len())
        .filter(|&k| mask & (1 << k) == 0)
        .map(|k| shape[k])
        .collect();
    let mut out = vec![A::default(); kept.iter().product()];
    let bs = byte_strides::<T>(strides);
    let x = arr(buf, offset, dtype, shape, &bs);
    let os = byte_strides::<A>(&c_strides(&kept));
    let y = arr_out(&mut out, out_dtype, &kept, &os);
    // SAFETY: both arrays describe live buffers of their dtypes.
    let s = unsafe { parfor_reduce_array(&x, mask, op as i32, o, &y) };
    // SAFETY: A is a plain integer or float type: its bytes are initialised.
    let bytes = unsafe {
        std::slice::from_raw_parts(out.as_ptr().cast::<u8>(), std::mem::size_of_val(&out[..]))
    };
    (s, bytes.to_vec())
}

/// Column reductions of C-order matrices and row reductions of Fortran-order ones
/// (read row by row, several outputs at once) give, for every operator and
/// accumulator type, the bits of the same slice reduced alone from a contiguous copy:
/// through lane, group and block boundaries (rows 1 ..= 13000; f64 blocks of 4096
/// from 12,288 rows on), strips (more than 128 columns, not a multiple of 8), signed
/// zeros (min and max pick by lane order), NaN payloads (the first NaN wins), all-NaN
/// columns, infinities, and team sizes 1..4.
#[test]
fn streamed_rows_give_the_bits_of_each_slice_alone() {
    use parfor_dtype::*;
    use parfor_op::*;
    fn is_nan(dtype: parfor_dtype, b: &[u8]) -> bool {
        match dtype {
            parfor_dtype::PARFOR_F64 => f64::from_le_bytes(b.try_into().unwrap()).is_nan(),
            parfor_dtype::PARFOR_F32 => f32::from_le_bytes(b.try_into().unwrap()).is_nan(),
            _ => false,
        }
    }
    fn check<T: Copy + Default, A: Copy + Default>(
        name: &str,
        dtype: parfor_dtype,
        out_dtype: parfor_dtype,
        ops: &[parfor_op],
        value: impl Fn(usize, usize, &mut Rng) -> T,
    ) {
        let mut rng = Rng(0x5eed ^ dtype as u64);
        let sizes: &[(usize, usize)] = &[
            (1, 5),
            (2, 3),
            (31, 17),
            (255, 9),
            (257, 130),
            (600, 64),
            (13_000, 11),
        ];
        for &(r, c) in sizes {
            let v: Vec<T> = (0..r * c).map(|i| value(i / c, i % c, &mut rng)).collect();
            for op in ops {
                // Which NaN a sum or product meeting several NaNs carries is not fixed
                // (the compiler orders each addition's operands as it likes).
                let arithmetic = matches!(op, PARFOR_SUM | PARFOR_PROD);
                for (layout, mask) in [("C axis 0", 1u64), ("F axis 1", 2u64)] {
                    let (shape, strides, data): (Vec<usize>, Vec<isize>, Vec<T>) = if mask == 1 {
                        (vec![r, c], vec![c as isize, 1], v.clone())
                    } else {
                        // The transpose stored in Fortran order: same bytes, columns
                        // of the C matrix are its rows.
                        (vec![c, r], vec![1, c as isize], v.clone())
                    };
                    // Reference: each slice copied out, reduced as a contiguous 1-D view.
                    let mut expect = Vec::new();
                    for j in 0..c {
                        let col: Vec<T> = (0..r).map(|i| v[i * c + j]).collect();
                        let (s, b) = reduce_matrix::<T, A>(
                            &col,
                            0,
                            &[r],
                            &[1],
                            dtype,
                            1,
                            *op,
                            out_dtype,
                            &opts(1, SCHEDULES[0], 0),
                        );
                        assert_eq!(s, parfor_status::PARFOR_OK, "{}", last_error());
                        expect.extend(b);
                    }
                    for threads in 1..=4 {
                        let sched = SCHEDULES[threads % 4];
                        let o = opts(threads, sched, 0);
                        let (s, got) = reduce_matrix::<T, A>(
                            &data, 0, &shape, &strides, dtype, mask, *op, out_dtype, &o,
                        );
                        assert_eq!(s, parfor_status::PARFOR_OK, "{}", last_error());
                        let size = std::mem::size_of::<A>();
                        let first = (0..c).find(|&j| {
                            let (g, e) = (&got[j * size..][..size], &expect[j * size..][..size]);
                            g != e && !(arithmetic && is_nan(out_dtype, g) && is_nan(out_dtype, e))
                        });
                        assert!(
                            first.is_none(),
                            "{name} {op:?} {layout} {r}x{c}, {threads} threads: streamed \
                             bits differ from the slice's own at output {first:?}: {:?} \
                             against {:?}",
                            &got[first.unwrap_or(0) * size..][..size],
                            &expect[first.unwrap_or(0) * size..][..size],
                        );
                    }
                }
            }
        }
    }
    let float_ops = [
        PARFOR_SUM,
        PARFOR_NAN_SUM,
        PARFOR_PROD,
        PARFOR_MIN,
        PARFOR_MAX,
        PARFOR_NAN_MIN,
        PARFOR_NAN_MAX,
        PARFOR_LOGICAL_AND,
        PARFOR_LOGICAL_OR,
    ];
    // Column j % 5 == 0: NaNs with distinct payloads and signs; 1: all NaN; 2: signed
    // zeros only; 3: infinities of both signs; 4: plain values near 1 (products stay
    // finite).
    let f64_value = |i: usize, j: usize, rng: &mut Rng| -> f64 {
        let z = if rng.below(2) == 0 { 0.0 } else { -0.0 };
        match j % 5 {
            0 if rng.below(7) == 0 => {
                f64::from_bits(0x7ff8_0000_0000_0000 | (i as u64 + 1))
                    * if rng.below(2) == 0 { 1.0 } else { -1.0 }
            }
            1 => f64::from_bits(0xfff8_0000_0000_0000 | (i as u64 % 1000 + 7)),
            2 => z,
            3 if rng.below(5) == 0 => [f64::INFINITY, f64::NEG_INFINITY][rng.below(2) as usize],
            _ => 1.0 + (rng.below(2001) as f64 - 1000.0) * 1e-6 + z,
        }
    };
    check::<f64, f64>("f64", PARFOR_F64, PARFOR_F64, &float_ops, f64_value);
    check::<f32, f32>("f32", PARFOR_F32, PARFOR_F32, &float_ops, |i, j, rng| {
        f64_value(i, j, rng) as f32
    });
    check::<f32, f64>(
        "f32 into f64",
        PARFOR_F32,
        PARFOR_F64,
        &[PARFOR_SUM, PARFOR_NAN_SUM, PARFOR_PROD],
        |i, j, rng| f64_value(i, j, rng) as f32,
    );
    check::<f64, u8>(
        "f64 logical into u8",
        PARFOR_F64,
        PARFOR_U8,
        &[PARFOR_LOGICAL_AND, PARFOR_LOGICAL_OR],
        f64_value,
    );
    let int_ops = [
        PARFOR_SUM,
        PARFOR_PROD,
        PARFOR_MIN,
        PARFOR_MAX,
        PARFOR_NAN_MIN,
        PARFOR_NAN_MAX,
        PARFOR_BIT_AND,
        PARFOR_BIT_OR,
        PARFOR_BIT_XOR,
        PARFOR_LOGICAL_AND,
        PARFOR_LOGICAL_OR,
    ];
    let int_value = |_: usize, j: usize, rng: &mut Rng| -> i64 {
        if j % 4 == 0 && rng.below(3) == 0 {
            0
        } else {
            rng.next() as i64
        }
    };
    check::<i8, i8>("i8", PARFOR_I8, PARFOR_I8, &int_ops, |i, j, rng| {
        int_value(i, j, rng) as i8
    });
    check::<i8, i64>(
        "i8 into i64",
        PARFOR_I8,
        PARFOR_I64,
        &[PARFOR_SUM, PARFOR_PROD],
        |i, j, rng| int_value(i, j, rng) as i8,
    );
    check::<u8, u64>(
        "u8 into u64",
        PARFOR_U8,
        PARFOR_U64,
        &[PARFOR_SUM, PARFOR_PROD],
        |i, j, rng| int_value(i, j, rng) as u8,
    );
    check::<i32, f64>(
        "i32 into f64",
        PARFOR_I32,
        PARFOR_F64,
        &[PARFOR_SUM, PARFOR_PROD],
        |i, j, rng| (int_value(i, j, rng) % 3) as i32,
    );
    check::<u64, u64>("u64", PARFOR_U64, PARFOR_U64, &int_ops, |i, j, rng| {
        int_value(i, j, rng) as u64
    });
}
