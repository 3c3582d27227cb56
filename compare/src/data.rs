//! The inputs of the comparison and the serial references they are checked against.

use std::alloc::{alloc_zeroed, dealloc, Layout};

/// A zero-initialised buffer aligned to a cache line, so that no implementation
/// gains or loses from where the allocator happened to put the data.
pub struct Buffer<T: Copy> {
    ptr: *mut T,
    len: usize,
}

// SAFETY: Buffer owns its allocation like a Vec<T>; T is plain data (Copy).
unsafe impl<T: Copy + Send> Send for Buffer<T> {}
// SAFETY: shared access only reads, as for &[T].
unsafe impl<T: Copy + Sync> Sync for Buffer<T> {}

const ALIGN: usize = 64;

impl<T: Copy> Buffer<T> {
    /// `len` elements, all bits zero (a valid value for the numeric types used here).
    pub fn zeroed(len: usize) -> Self {
        let layout = Self::layout(len);
        // SAFETY: the layout has a nonzero size (at least one element's worth).
        let ptr = unsafe { alloc_zeroed(layout) } as *mut T;
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        Buffer { ptr, len }
    }

    fn layout(len: usize) -> Layout {
        let bytes = std::mem::size_of::<T>()
            .checked_mul(len.max(1))
            .expect("buffer size fits in usize");
        Layout::from_size_align(bytes, ALIGN).expect("valid layout")
    }

    pub fn as_slice(&self) -> &[T] {
        // SAFETY: ptr is valid for len initialised elements (zeroed, then written).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as above, and &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl<T: Copy> Drop for Buffer<T> {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout.
        unsafe { dealloc(self.ptr as *mut u8, Self::layout(self.len)) }
    }
}

/// Every input buffer of the comparison.
pub struct Inputs {
    /// Doubles in [0.5, 1.5): no element is negligible next to the sum, so losing or
    /// doubling one shows in the check. The largest SUM size (1e8, 800 MB).
    pub x: Buffer<f64>,
    /// Second operand of the dot product, 1.5 - (x - 0.5).
    pub y: Buffer<f64>,
    /// Floats in [-1, 1) for MIN/MAX.
    pub xf: Buffer<f32>,
    /// Integers in [-1000, 1000): no partial sum of 1e6 of them overflows an i32,
    /// which matters since signed overflow is undefined in the OpenMP loops.
    pub xi: Buffer<i32>,
    /// xi times 1000003, so that the i64 sums exceed the i32 range.
    pub xl: Buffer<i64>,
}

impl Inputs {
    /// `n_large` doubles in `x`, `n_typed` elements in the other buffers.
    pub fn generate(n_large: usize, n_typed: usize) -> Self {
        let mut x = Buffer::zeroed(n_large);
        let mut y = Buffer::zeroed(n_typed);
        let mut xf = Buffer::zeroed(n_typed);
        let mut xi = Buffer::zeroed(n_typed);
        let mut xl = Buffer::zeroed(n_typed);
        let mut rng = Lcg(0x9E37_79B9_7F4A_7C15);
        for v in x.as_mut_slice() {
            *v = 0.5 + rng.unit();
        }
        let xs = x.as_slice();
        for (i, ((y, f), (a, b))) in y
            .as_mut_slice()
            .iter_mut()
            .zip(xf.as_mut_slice())
            .zip(xi.as_mut_slice().iter_mut().zip(xl.as_mut_slice()))
            .enumerate()
        {
            let u = xs[i] - 0.5;
            *y = 1.5 - u;
            *f = (u * 2.0 - 1.0) as f32;
            *a = (u * 2000.0) as i32 - 1000;
            *b = i64::from(*a) * 1_000_003;
        }
        Inputs { x, y, xf, xi, xl }
    }
}

/// A 64-bit linear congruential generator (Knuth's MMIX constants): reproducible
/// data, the same as omp_compare.c's.
struct Lcg(u64);

impl Lcg {
    /// The top 53 bits as a double in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The correctly rounded sum of `xs`: Shewchuk's algorithm (as Python's math.fsum)
/// keeps the exact sum as a list of non-overlapping partials, then rounds once.
/// Finite inputs of moderate size only (the comparison's data): no overflow handling.
pub fn exact_sum(xs: &[f64]) -> f64 {
    let mut partials: Vec<f64> = Vec::new();
    for &x in xs {
        let mut x = x;
        let mut kept = 0;
        for j in 0..partials.len() {
            let y = partials[j];
            let (hi, lo) = if x.abs() < y.abs() { (y, x) } else { (x, y) };
            let sum = hi + lo;
            let err = lo - (sum - hi);
            if err != 0.0 {
                partials[kept] = err;
                kept += 1;
            }
            x = sum;
        }
        partials.truncate(kept);
        partials.push(x);
    }
    // Round the exact sum of the partials (largest last) to nearest, ties to even,
    // as fsum does: add from the top until a nonzero low part appears, then correct
    // a halfway case using the sign of the next partial.
    let Some(mut hi) = partials.pop() else {
        return 0.0;
    };
    let mut lo = 0.0;
    while let Some(y) = partials.pop() {
        let x = hi;
        hi = x + y;
        let yr = hi - x;
        lo = y - yr;
        if lo != 0.0 {
            break;
        }
    }
    if let Some(&next) = partials.last() {
        if (lo < 0.0 && next < 0.0) || (lo > 0.0 && next > 0.0) {
            let y = lo * 2.0;
            let x = hi + y;
            if y == x - hi {
                hi = x;
            }
        }
    }
    hi
}

/// `sum |x_i|`, the scale that the floating-point tolerances are relative to (a
/// plain f64 sum: its own rounding error does not matter for a scale).
pub fn abs_sum(xs: &[f64]) -> f64 {
    xs.iter().map(|v| v.abs()).sum()
}

/// An FNV-1a digest of a buffer's bytes: two loops wrote the same values exactly
/// when their digests agree (a collision would need a deliberate construction).
pub fn digest(xs: &[f64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in xs {
        for b in v.to_bits().to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn exact_sum_cancels_and_rounds() {
        assert_eq!(exact_sum(&[1e308, 1.0, -1e308]), 1.0);
        assert_eq!(exact_sum(&[0.1; 10]), 1.0);
        assert_eq!(exact_sum(&[]), 0.0);
        // 1 + 2^-53 + 2^-106: the tail breaks the tie upwards.
        let t = f64::EPSILON / 2.0;
        assert_eq!(exact_sum(&[1.0, t, t * t]), 1.0 + f64::EPSILON);
        assert_eq!(exact_sum(&[1.0, t]), 1.0);
    }
}
