//! The typed sorts: order-preserving keys and a parallel LSD radix sort over them
//! (see the module documentation of `sort`).

use super::{alloc_error, SortOrder, RADIX_MIN_LEN, SORT_PARALLEL_MIN_LEN};
use crate::error::Error;
use crate::kernels::Element;
use crate::runtime;
use crate::schedule::{static_block, Options};

/// An unsigned radix key.
pub trait RadixKey: Copy + Ord + Send + Sync + std::fmt::Debug + 'static {
    /// Bytes in the key (one counting pass each).
    const BYTES: usize;
    /// The largest key (every NaN sorts with it).
    const MAX: Self;
    /// Byte `d` (0: least significant).
    fn byte(self, d: usize) -> usize;
    /// The bits in which `self` and `other` differ.
    fn diff(self, other: Self) -> Self;
    /// Bitwise or.
    fn or(self, other: Self) -> Self;
    /// Bitwise complement (reverses the order).
    fn flip(self) -> Self;
}

macro_rules! radix_key {
    ($($t:ty),*) => {$(
        impl RadixKey for $t {
            const BYTES: usize = std::mem::size_of::<$t>();
            const MAX: Self = <$t>::MAX;
            #[inline(always)]
            fn byte(self, d: usize) -> usize {
                ((self >> (8 * d)) & 0xff) as usize
            }
            #[inline(always)]
            fn diff(self, other: Self) -> Self {
                self ^ other
            }
            #[inline(always)]
            fn or(self, other: Self) -> Self {
                self | other
            }
            #[inline(always)]
            fn flip(self) -> Self {
                !self
            }
        }
    )*};
}
radix_key!(u8, u16, u32, u64);

/// An element type with an order-preserving radix key (numpy's order for floats).
pub trait SortKey: Element {
    /// The unsigned key type, as wide as `Self`.
    type Key: RadixKey;
    /// The key whose unsigned order is the ascending order of the values.
    fn key(self) -> Self::Key;
    /// The key of the descending order: the ascending key reversed, NaN still last.
    fn key_desc(self) -> Self::Key {
        if self.is_nan() {
            Self::Key::MAX
        } else {
            self.key().flip()
        }
    }
}

macro_rules! unsigned_key {
    ($($t:ty),*) => {$(
        impl SortKey for $t {
            type Key = $t;
            #[inline(always)]
            fn key(self) -> $t {
                self
            }
        }
    )*};
}
unsigned_key!(u8, u16, u32, u64);

macro_rules! signed_key {
    ($($t:ty => $u:ty),*) => {$(
        impl SortKey for $t {
            type Key = $u;
            #[inline(always)]
            fn key(self) -> $u {
                // Flipping the sign bit maps MIN..=MAX onto 0..=MAX in order.
                (self as $u) ^ (1 << (<$u>::BITS - 1))
            }
        }
    )*};
}
signed_key!(i8 => u8, i16 => u16, i32 => u32, i64 => u64);

/// The signed twin of an unsigned key type, for the arithmetic shift of the float keys.
trait Signed {
    type S;
}
impl Signed for u32 {
    type S = i32;
}
impl Signed for u64 {
    type S = i64;
}

macro_rules! float_key {
    ($($t:ident => $u:ty),*) => {$(
        impl SortKey for $t {
            type Key = $u;
            #[inline(always)]
            fn key(self) -> $u {
                if self.is_nan() {
                    return <$u>::MAX;
                }
                // -0.0 == +0.0: both take the key of +0.0.
                let bits = if self == 0.0 { 0 } else { self.to_bits() };
                let sign: $u = 1 << (<$u>::BITS - 1);
                // Negative values: all bits flipped (larger magnitude, smaller key);
                // positive values: above every negative one. +inf maps below MAX.
                // Without a branch: random signs would mispredict half the time.
                let negative = ((bits as <$u as Signed>::S) >> (<$u>::BITS - 1)) as $u;
                bits ^ (negative | sign)
            }
        }
    )*};
}
float_key!(f32 => u32, f64 => u64);

/// Sorts `data` in place (ascending, or descending with NaN last). Always stable.
/// Errors: `Runtime` when the scratch buffer cannot be allocated.
pub fn sort<T: SortKey>(data: &mut [T], order: SortOrder, opts: &Options) -> Result<(), Error> {
    if order.descending {
        radix_by(data, T::key_desc, opts)
    } else {
        radix_by(data, T::key, opts)
    }
}

/// A key with the position it came from.
#[derive(Clone, Copy, Debug)]
struct Keyed<K> {
    key: K,
    index: usize,
}

/// Writes to `out[i]` the position in `data` of the i-th element in sorted order;
/// ties by position (stable), whatever `order.stable` says. Errors: `InvalidArgument`
/// when the lengths differ; `Runtime` when memory runs out.
pub fn argsort<T: SortKey>(
    data: &[T],
    order: SortOrder,
    opts: &Options,
    out: &mut [usize],
) -> Result<(), Error> {
    if data.len() != out.len() {
        return Err(Error::InvalidArgument(format!(
            "argsort of {} elements into {} indices",
            data.len(),
            out.len()
        )));
    }
    let key: fn(T) -> T::Key = if order.descending {
        T::key_desc
    } else {
        T::key
    };
    let mut items = Vec::new();
    items.try_reserve_exact(data.len()).map_err(|_| {
        alloc_error(
            "argsort's keys",
            data.len()
                .saturating_mul(std::mem::size_of::<Keyed<T::Key>>()),
        )
    })?;
    items.extend(
        data.iter()
            .enumerate()
            .map(|(index, &v)| Keyed { key: key(v), index }),
    );
    radix_by(&mut items, |it: Keyed<T::Key>| it.key, opts)?;
    for (o, it) in out.iter_mut().zip(&items) {
        *o = it.index;
    }
    Ok(())
}

/// A buffer shared by the parts of a pass; each part touches its own elements.
struct Raw<V>(*mut V);
impl<V> Clone for Raw<V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<V> Copy for Raw<V> {}
// SAFETY: the parts of a pass read shared source elements and write disjoint
// destination elements and count rows (see `radix_by`).
unsafe impl<V: Send> Send for Raw<V> {}
// SAFETY: as above.
unsafe impl<V: Send> Sync for Raw<V> {}
impl<V> Raw<V> {
    fn get(self) -> *mut V {
        self.0
    }
}

/// Runs `f(part)` for every part in `0..k`, on a team of `k` when `k > 1`. Each part
/// must be idempotent: if the team cannot start, every part runs here again.
pub(super) fn for_parts(k: usize, f: impl Fn(usize) + Copy + Send + Sync) {
    if k <= 1 {
        f(0);
        return;
    }
    let ran = runtime::fork_join_copy(k, k, move |tid, team| {
        let mut p = tid;
        while p < k {
            f(p);
            p += team;
        }
    });
    if ran.is_err() {
        (0..k).for_each(f);
    }
}

/// Stable LSD radix sort of `data` by `key` (see the module documentation).
fn radix_by<V, K, F>(data: &mut [V], key: F, opts: &Options) -> Result<(), Error>
where
    V: Copy + Send + Sync,
    K: RadixKey,
    F: Fn(V) -> K + Copy + Send + Sync,
{
    let n = data.len();
    if n < 2 {
        return Ok(());
    }
    if n < RADIX_MIN_LEN {
        data.sort_by_key(|v| key(*v));
        return Ok(());
    }
    if data.windows(2).all(|w| key(w[0]) <= key(w[1])) {
        return Ok(());
    }
    // Strictly descending only: reversing equal keys would break stability.
    if data.windows(2).all(|w| key(w[0]) > key(w[1])) {
        data.reverse();
        return Ok(());
    }
    let first = key(data[0]);
    // The bits in which some key differs from the first: a byte that is zero here is
    // the same in every key, and its pass would move nothing.
    let differ = data
        .iter()
        .fold(first.diff(first), |acc, &v| acc.or(key(v).diff(first)));
    let passes: Vec<usize> = (0..K::BYTES).filter(|&d| differ.byte(d) != 0).collect();
    let k = if n >= SORT_PARALLEL_MIN_LEN {
        runtime::team_size(opts.num_threads(), n / (SORT_PARALLEL_MIN_LEN / 2))
    } else {
        1
    };
    let mut scratch: Vec<V> = Vec::new();
    scratch
        .try_reserve_exact(n)
        .map_err(|_| alloc_error("sort's scratch buffer", n.saturating_mul(size_of::<V>())))?;
    scratch.resize(n, data[0]);
    let mut counts = vec![0usize; k * 256];
    let counts_raw = Raw(counts.as_mut_ptr());
    let (mut src, mut dst) = (Raw(data.as_mut_ptr()), Raw(scratch.as_mut_ptr()));
    // On one thread the counts of every byte are those of the whole input, which
    // no pass changes: one read counts them all, instead of one read per pass.
    let mut whole = Vec::new();
    if k == 1 {
        whole = vec![[0usize; 256]; K::BYTES];
        for &v in data.iter() {
            let kv = key(v);
            for &d in &passes {
                whole[d][kv.byte(d)] += 1;
            }
        }
    }
    for &d in &passes {
        if k == 1 {
            counts.copy_from_slice(&whole[d]);
        } else {
            for_parts(k, move |p| {
                let r = static_block(n, k, p);
                let mut local = [0usize; 256];
                for i in r {
                    // SAFETY: i < n; the source is only read during this pass.
                    local[key(unsafe { src.get().add(i).read() }).byte(d)] += 1;
                }
                // SAFETY: row p of `counts` belongs to part p alone.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        local.as_ptr(),
                        counts_raw.get().add(p * 256),
                        256,
                    )
                };
            });
        }
        // Exclusive prefix over (byte value, part): part p's first position for byte b.
        let mut running = 0;
        for b in 0..256 {
            for p in 0..k {
                let c = counts[p * 256 + b];
                counts[p * 256 + b] = running;
                running += c;
            }
        }
        debug_assert_eq!(running, n);
        let counts_raw = Raw(counts.as_mut_ptr());
        for_parts(k, move |p| {
            let mut pos = [0usize; 256];
            // SAFETY: row p was written above and is only read now.
            unsafe {
                std::ptr::copy_nonoverlapping(counts_raw.get().add(p * 256), pos.as_mut_ptr(), 256)
            };
            for i in static_block(n, k, p) {
                // SAFETY: i < n, the source is only read in this pass.
                let v = unsafe { src.get().add(i).read() };
                let slot = &mut pos[key(v).byte(d)];
                // The counts come from the same keys (a pure function of the same
                // elements), so the slots of all parts are a permutation of 0..n.
                assert!(*slot < n, "radix slot out of range");
                // SAFETY: in bounds (checked); no other part writes this slot.
                unsafe { dst.get().add(*slot).write(v) };
                *slot += 1;
            }
        });
        std::mem::swap(&mut src, &mut dst);
    }
    if passes.len() % 2 == 1 {
        // The sorted elements are in the scratch buffer.
        data.copy_from_slice(&scratch);
    }
    Ok(())
}
