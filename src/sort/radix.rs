//! The typed sorts: order-preserving keys and a parallel radix sort over them
//! (see the module documentation of `sort`).

use super::{alloc_error, SortOrder, RADIX_MIN_LEN, SORT_PARALLEL_MIN_LEN};
use crate::error::Error;
use crate::kernels::Element;
use crate::runtime;
use crate::schedule::{static_block, Options};
use std::mem::{align_of, size_of};
use std::sync::atomic::{AtomicBool, Ordering};

/// An unsigned radix key.
pub trait RadixKey: Copy + Ord + Send + Sync + std::fmt::Debug + 'static {
    /// Bytes in the key (one counting pass each).
    const BYTES: usize;
    /// The largest key (every NaN sorts with it).
    const MAX: Self;
    /// The zero key.
    const ZERO: Self;
    /// Byte `d` (0: least significant).
    fn byte(self, d: usize) -> usize;
    /// The bits in which `self` and `other` differ.
    fn diff(self, other: Self) -> Self;
    /// Bitwise or.
    fn or(self, other: Self) -> Self;
    /// Bitwise and.
    fn and(self, other: Self) -> Self;
    /// Bitwise complement (reverses the order).
    fn flip(self) -> Self;
    /// The bits of the bytes below byte `d` (all ones in bytes 0..d).
    fn low_bytes(d: usize) -> Self;
}

macro_rules! radix_key {
    ($($t:ty),*) => {$(
        impl RadixKey for $t {
            const BYTES: usize = std::mem::size_of::<$t>();
            const MAX: Self = <$t>::MAX;
            const ZERO: Self = 0;
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
            fn and(self, other: Self) -> Self {
                self & other
            }
            #[inline(always)]
            fn flip(self) -> Self {
                !self
            }
            #[inline(always)]
            fn low_bytes(d: usize) -> Self {
                if d >= Self::BYTES {
                    Self::MAX
                } else {
                    (1 << (8 * d)) - 1
                }
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
    /// Floats only: the bits mapped one to one onto an unsigned key in the same
    /// order. Right for every value but NaN with its sign bit set and -0.0 (which
    /// must tie with 0.0): see [`SortKey::has_plain_key`]. Integers: their key.
    fn plain_key(self) -> Self::Key {
        self.key()
    }
    /// Whether [`SortKey::plain_key`] puts this value in its place (floats: not
    /// NaN, not -0.0).
    fn has_plain_key(self) -> bool {
        true
    }
    /// The value whose [`SortKey::plain_key`] is `k`.
    fn from_plain_key(k: Self::Key) -> Self {
        let _ = k;
        unreachable!("plain keys are for floats")
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
            #[inline(always)]
            fn plain_key(self) -> $u {
                let bits = self.to_bits();
                let sign: $u = 1 << (<$u>::BITS - 1);
                let negative = ((bits as <$u as Signed>::S) >> (<$u>::BITS - 1)) as $u;
                bits ^ (negative | sign)
            }
            #[inline(always)]
            fn has_plain_key(self) -> bool {
                // NaN sorts last in either direction and -0.0 ties with 0.0: the
                // plain bijection puts them elsewhere. (Positive NaNs would land
                // last too, but all NaNs take one path: NaN inputs are rare.)
                // Integer operations only (no float compare), so that the survey's
                // loop stays as cheap as the integers' (1e6 sorted f64, 2 threads on
                // the Intel VM: 2.5-4.2 -> 1.9-2.5 ms, and 0.4 ms once the survey
                // vectorised). NaN: magnitude bits above +inf's.
                let sign: $u = 1 << (<$u>::BITS - 1);
                let bits = self.to_bits();
                ((bits & !sign) <= <$t>::INFINITY.to_bits()) & (bits != sign)
            }
            #[inline(always)]
            fn from_plain_key(k: $u) -> Self {
                let sign: $u = 1 << (<$u>::BITS - 1);
                // Keys with the top bit set came from non-negative values.
                let positive = ((k as <$u as Signed>::S) >> (<$u>::BITS - 1)) as $u;
                <$t>::from_bits(k ^ (!positive | sign))
            }
        }
    )*};
}
float_key!(f32 => u32, f64 => u64);

/// Sorts `data` in place (ascending, or descending with NaN last). Always stable.
/// Errors: `Runtime` when the scratch buffer cannot be allocated.
///
/// Floats with neither NaN nor -0.0 are rewritten in place into their plain keys
/// (complemented when descending), sorted as unsigned integers and rewritten back:
/// the radix passes then move integers whose order is the sort's, instead of
/// computing a float's key at every pass (f64, 1e6 random, one thread on the Intel
/// VM: 70 -> 47 ms with both rewrites). The read that checks for NaN and -0.0 is
/// also the radix sort's survey, so input already in order (either way) costs that
/// one read and is not rewritten.
pub fn sort<T: SortKey>(data: &mut [T], order: SortOrder, opts: &Options) -> Result<(), Error> {
    let n = data.len();
    let plain = if n >= RADIX_MIN_LEN && T::DTYPE.is_float() {
        plain_survey(data, sort_team(n, opts))
    } else {
        None
    };
    let Some(plain) = plain else {
        return by_key(data, order, opts, None);
    };
    // The survey of the keys the sort orders by (key_desc is the complement of the
    // plain key when there is no NaN).
    let all = if order.descending {
        plain.complemented()
    } else {
        plain
    };
    if all.non_decreasing() || all.non_increasing() {
        // Nothing to move, or one reversal: the key path does it from the survey.
        return by_key(data, order, opts, Some(all));
    }
    let mask = desc_mask::<T::Key>(order.descending);
    let keys = to_plain_keys(data, mask, opts);
    let sorted = radix_by(keys, |k| k, opts, Some(all));
    from_plain_keys::<T>(keys, mask, opts);
    sorted
}

/// [`radix_by`] on the keys of `order` (`known`: their survey, when already made).
fn by_key<T: SortKey>(
    data: &mut [T],
    order: SortOrder,
    opts: &Options,
    known: Option<Survey<T::Key>>,
) -> Result<(), Error> {
    if order.descending {
        radix_by(data, T::key_desc, opts, known)
    } else {
        radix_by(data, T::key, opts, known)
    }
}

/// The team size of a sort of `n` elements.
fn sort_team(n: usize, opts: &Options) -> usize {
    if n >= SORT_PARALLEL_MIN_LEN {
        runtime::team_size(opts.num_threads(), n / (SORT_PARALLEL_MIN_LEN / 2))
    } else {
        1
    }
}

/// One parallel read of a float input (at least `k` elements) in `k` parts: the
/// survey of its plain keys, or `None` when some value has none (NaN, -0.0). Where
/// every value has one, the plain key is the ascending key ([`SortKey::key`]).
fn plain_survey<T: SortKey>(data: &[T], k: usize) -> Option<Survey<T::Key>> {
    let whole = Piece::whole(data.len(), T::Key::ZERO);
    // Read only: the pointer is mutable for `Raw`'s sake.
    let buf = Raw(data.as_ptr().cast_mut());
    let mut parts: Vec<Option<Survey<T::Key>>> = vec![None; k];
    let out = Raw(parts.as_mut_ptr());
    for_parts(k, move |p| {
        // SAFETY: data is only read in this phase.
        let share = unsafe { whole.share(buf, k, p) };
        let (s, bad) = survey_checked(share, T::plain_key, T::has_plain_key);
        // SAFETY: slot p of `parts` belongs to part p alone.
        unsafe { out.get().add(p).write((bad == 0).then_some(s)) };
    });
    let parts = parts.into_iter().collect::<Option<Vec<_>>>()?;
    Some(merge_surveys(&parts))
}

/// The mask xor-ed into plain keys: all ones for a descending sort (the order
/// reversed; no NaN among plain keys), zero for an ascending one.
fn desc_mask<K: RadixKey>(descending: bool) -> K {
    if descending {
        K::MAX
    } else {
        K::ZERO
    }
}

/// Rewrites `data`, whose values all have plain keys ([`plain_survey`] said so), in
/// place into those keys xor-ed with `mask`, in parallel, and returns them as the
/// key type's slice.
fn to_plain_keys<'a, T: SortKey>(
    data: &'a mut [T],
    mask: T::Key,
    opts: &Options,
) -> &'a mut [T::Key] {
    assert!(
        size_of::<T>() == size_of::<T::Key>() && align_of::<T>() == align_of::<T::Key>(),
        "a float and its key are the same size"
    );
    let n = data.len();
    let k = sort_team(n, opts);
    let whole = Piece::whole(n, T::Key::ZERO);
    let buf = Raw(data.as_mut_ptr());
    for_parts(k, move |p| {
        // SAFETY: part p alone touches its share (static_block partitions 0..n).
        for x in unsafe { whole.share_mut(buf, k, p) } {
            let key = x.plain_key().diff(mask);
            // SAFETY: T and T::Key have the same size and alignment (asserted
            // above), and every bit pattern is a valid integer.
            unsafe { (x as *mut T).cast::<T::Key>().write(key) };
        }
    });
    // SAFETY: as above; the team has joined, and `data`'s borrow moves into the
    // returned slice.
    unsafe { std::slice::from_raw_parts_mut(buf.get().cast::<T::Key>(), n) }
}

/// The inverse of [`to_plain_keys`] with the same `mask`: the keys back into
/// values, in place, in parallel.
fn from_plain_keys<T: SortKey>(keys: &mut [T::Key], mask: T::Key, opts: &Options) {
    let n = keys.len();
    let k = sort_team(n, opts);
    let whole = Piece::whole(n, T::Key::ZERO);
    let buf = Raw(keys.as_mut_ptr());
    for_parts(k, move |p| {
        // SAFETY: part p alone touches its share.
        for x in unsafe { whole.share_mut(buf, k, p) } {
            let value = T::from_plain_key(x.diff(mask));
            // SAFETY: T and its key have the same size and alignment
            // (`to_plain_keys` asserted it); the key slot is replaced by a valid T.
            unsafe { (x as *mut T::Key).cast::<T>().write(value) };
        }
    });
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
    radix_by(&mut items, |it: Keyed<T::Key>| it.key, opts, None)?;
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

/// Runs `f(part)` exactly once for every part in `0..k`, on a team of `k` when
/// `k > 1`; if the team cannot start, the parts it did not run run here.
pub(super) fn for_parts(k: usize, f: impl Fn(usize) + Copy + Send + Sync) {
    if k <= 1 {
        f(0);
        return;
    }
    // Which parts have run: parts rewrite their data in place (the float keys), so
    // the fallback must not run one again.
    let done: Vec<AtomicBool> = (0..k).map(|_| AtomicBool::new(false)).collect();
    let done = &done[..];
    let once = move |p: usize| {
        if !done[p].swap(true, Ordering::Relaxed) {
            f(p);
        }
    };
    let ran = runtime::fork_join_copy(k, k, move |tid, team| {
        let mut p = tid;
        while p < k {
            once(p);
            p += team;
        }
    });
    if ran.is_err() {
        (0..k).for_each(once);
    }
}

/// Ranges of at most this many bytes are sorted by LSD passes alone: the range and
/// its scratch twin (twice this) stay in a core's L2 cache, 512 KiB or more on every
/// x86-64 and Arm server core of the last years (AMD Zen 2-5: 512 KiB-1 MiB, Intel
/// since Skylake-SP: 1-2 MiB, Neoverse N1/V1: 1 MiB), so each pass after the first
/// runs from the cache. A larger range is first split by its most significant
/// differing byte (MSD), which makes 256 ranges that are sorted independently: fewer
/// passes over main memory, and the ranges spread over the team.
const LSD_MAX_BYTES: usize = 192 << 10;

/// In-cache ranges of at least this many elements whose differing bytes each take
/// at most [`FEW_VALUES`] values are split on their top byte first (see
/// `sort_range`). Below it the 256-entry scans that count the values cost more
/// than the passes they can save.
const FEW_MIN_LEN: usize = 1024;

/// See [`FEW_MIN_LEN`]: random keys take all 256 values of their low bytes, and
/// a few dozen distinct keys take at most that many of any byte.
const FEW_VALUES: usize = 64;

/// Buckets of a team split shorter than this are sorted together with their
/// neighbours, as one leaf of at least this many elements (a radix sort of the
/// group orders it by the split byte too): a leaf's fixed costs (a count table of
/// every byte to clear and prefix, a call, a claim from the shared counter) are a
/// microsecond or two, more than sorting a few dozen elements (1e4 random u64 on two
/// threads splits into 256 buckets of about 40).
const LEAF_MIN_LEN: usize = 2048;

/// Ranges shorter than this are sorted by the standard library's stable sort (an
/// insertion sort there): a radix pass costs a 256-entry table to clear and prefix,
/// more than the few comparisons of such a range.
const INSERTION_MAX_LEN: usize = 48;

/// The bytes in which `differ` is nonzero, most significant last.
fn passes<K: RadixKey>(differ: K) -> ([usize; 16], usize) {
    let mut out = [0; 16];
    let mut len = 0;
    for d in 0..K::BYTES {
        if differ.byte(d) != 0 {
            out[len] = d;
            len += 1;
        }
    }
    (out, len)
}

/// Moves `src` into `dst` stably by byte `d` of the key, from the exclusive prefix
/// positions `pos` (a table built from the same elements' counts).
fn scatter<V: Copy, K: RadixKey>(
    src: &[V],
    dst: &mut [V],
    pos: &mut [usize; 256],
    d: usize,
    key: impl Fn(V) -> K,
) {
    for &v in src {
        let slot = &mut pos[key(v).byte(d)];
        dst[*slot] = v;
        *slot += 1;
    }
}

/// How many keys of `v` have each value of byte `d`.
/// Also the and and the or of the keys (for the piece's own differing bits when
/// byte `d` turns out constant): two register operations an element in a loop
/// bound by its table increments, so they cost next to nothing.
fn count_byte<V: Copy, K: RadixKey>(
    v: &[V],
    d: usize,
    key: impl Fn(V) -> K,
) -> ([usize; 256], K, K) {
    // Four tables, element i counted in table i mod 4: a run of equal bytes (few
    // distinct keys, a constant byte) then makes four independent chains of
    // increments instead of one chain through the same counter, whose every step
    // waits for the previous store (about 5 cycles on current x86 cores).
    let mut tables = [[0usize; 256]; 4];
    let (mut and, mut or) = (K::MAX, K::ZERO);
    let mut quads = v.chunks_exact(4);
    for q in &mut quads {
        for (t, &x) in tables.iter_mut().zip(q) {
            let kx = key(x);
            t[kx.byte(d)] += 1;
            and = and.and(kx);
            or = or.or(kx);
        }
    }
    for &x in quads.remainder() {
        let kx = key(x);
        tables[0][kx.byte(d)] += 1;
        and = and.and(kx);
        or = or.or(kx);
    }
    let mut counts = tables[0];
    for t in &tables[1..] {
        for (c, &x) in counts.iter_mut().zip(t) {
            *c += x;
        }
    }
    (counts, and, or)
}

/// Exclusive prefix of one count table, in place.
fn exclusive_prefix(counts: &mut [usize; 256]) {
    let mut running = 0;
    for c in counts.iter_mut() {
        let x = *c;
        *c = running;
        running += x;
    }
}

/// Sorts the elements of `cur` on this thread, with `other` (as long) as scratch.
/// Keys of `cur` differ only in bits set in `differ` (it may name more: a range
/// inherits its parent's bits, less the bytes its parent split on). The result ends
/// in `cur` when `in_cur`, else in `other`. Stable.
///
/// `few`: the range is a bucket of a split whose byte took at most [`FEW_VALUES`]
/// values, so its keys are likely few distinct values too. An in-cache range so
/// marked is surveyed first (one vector read: its exact bits, and a bucket of one
/// value or already in order is done) and then counted on its top differing byte
/// alone, and split on it again while that byte takes few values: one count a
/// level instead of the counts of every byte (1e4 f64 of 16 values, one thread:
/// two levels of 8 counts an element became two of one).
fn sort_range<V, K, F>(cur: &mut [V], other: &mut [V], in_cur: bool, key: F, differ: K, few: bool)
where
    V: Copy,
    K: RadixKey,
    F: Fn(V) -> K + Copy,
{
    let m = cur.len();
    debug_assert_eq!(m, other.len());
    let finish = |cur: &mut [V], other: &mut [V], result_in_cur: bool| {
        if result_in_cur != in_cur {
            if in_cur {
                cur.copy_from_slice(other)
            } else {
                other.copy_from_slice(cur)
            }
        }
    };
    let in_cache = std::mem::size_of_val(cur) <= LSD_MAX_BYTES;
    let mut differ = differ;
    if few && in_cache && m >= INSERTION_MAX_LEN && differ != K::ZERO {
        let s = survey(cur, key);
        if s.non_decreasing() {
            finish(cur, other, true);
            return;
        }
        differ = s.and.diff(s.or);
    }
    let (cands, nc) = passes(differ);
    let cands = &cands[..nc];
    if nc == 0 || m < 2 {
        finish(cur, other, true);
        return;
    }
    if m < INSERTION_MAX_LEN {
        cur.sort_by_key(|v| key(*v));
        finish(cur, other, true);
        return;
    }
    if few && in_cache && nc > 1 && m >= FEW_MIN_LEN && sample_is_few(cur, key) {
        // The top differing byte alone.
        let d = cands[nc - 1];
        let (counts, _, _) = count_byte(cur, d, key);
        if few_valued(&counts) {
            split_on(cur, other, in_cur, key, differ, d, &counts);
            return;
        }
        // Not few after all: the counts of every byte, below.
    }
    if in_cache {
        // LSD: the counts of every pass from one read (no pass changes them). All
        // bytes are counted: shifts by constants and no indirection through the
        // list of candidates, cheaper than skipping the others. m is far below
        // u32::MAX here.
        let mut hist = [[0u32; 256]; 8];
        for &v in cur.iter() {
            let kv = key(v);
            for (d, h) in hist.iter_mut().enumerate().take(K::BYTES) {
                h[kv.byte(d)] += 1;
            }
        }
        // The bytes that differ here, and how many values each takes.
        let mut live = [0usize; 16];
        let mut nl = 0;
        let mut widest = 0;
        for &d in cands {
            let values = hist[d].iter().filter(|&&c| c != 0).count();
            if values > 1 {
                live[nl] = d;
                nl += 1;
                widest = widest.max(values);
            }
        }
        let live = &live[..nl];
        if nl > 1 && m >= FEW_MIN_LEN && widest <= FEW_VALUES {
            // Every differing byte takes few values, as when the keys are few
            // distinct values: one MSD split on the top byte, after which each
            // bucket's own counts find the bytes still differing in it (none for a
            // bucket of one value), instead of an LSD pass over every byte.
            let d = live[nl - 1];
            let counts: [usize; 256] = std::array::from_fn(|b| hist[d][b] as usize);
            split_on(cur, other, in_cur, key, differ, d, &counts);
            return;
        }
        let mut in_a = true;
        for &d in live {
            let mut pos = [0usize; 256];
            let mut running = 0;
            for (p, &c) in pos.iter_mut().zip(&hist[d]) {
                *p = running;
                running += c as usize;
            }
            if in_a {
                scatter(cur, other, &mut pos, d, key);
            } else {
                scatter(other, cur, &mut pos, d, key);
            }
            in_a = !in_a;
        }
        finish(cur, other, in_a);
        return;
    }
    // MSD on the most significant byte that differs in this range, then each bucket
    // on its own.
    let d = cands[nc - 1];
    let (counts, and, or) = count_byte(cur, d, key);
    if counts.contains(&m) {
        // Byte d is the same in every key here: the range's own bits, from the same
        // read, name exactly the bytes that differ in it, so that no further count
        // is wasted on a constant byte (1e6 f64 of 16 distinct values: pieces of one
        // value after the team's splits cost one count, not a count of each of their
        // 6 remaining bytes).
        sort_range(cur, other, in_cur, key, and.diff(or), few);
        return;
    }
    split_on(cur, other, in_cur, key, differ, d, &counts);
}

/// Whether a byte's `counts` hold at most [`FEW_VALUES`] values.
fn few_valued(counts: &[usize; 256]) -> bool {
    counts.iter().filter(|&&c| c != 0).count() <= FEW_VALUES
}

/// Elements of a range looked at by [`sample_is_few`].
const SAMPLE: usize = 64;

/// Whether [`SAMPLE`] evenly spaced keys of `v` hold at most half as many distinct
/// keys: a guess, from about a microsecond of work, that the range is a few
/// distinct keys (16 of them show at most 16 in the sample; random keys nearly 64),
/// so that a range of random keys goes straight to its LSD passes rather than to
/// an MSD split on a top byte that happens to take few values (uniform floats: the
/// sign and exponent), which would count it twice.
fn sample_is_few<V: Copy, K: RadixKey>(v: &[V], key: impl Fn(V) -> K) -> bool {
    let step = v.len() / SAMPLE;
    let mut keys = [K::ZERO; SAMPLE];
    for (i, k) in keys.iter_mut().enumerate() {
        *k = key(v[i * step]);
    }
    keys.sort_unstable();
    let distinct = 1 + keys.windows(2).filter(|w| w[0] != w[1]).count();
    distinct <= SAMPLE / 2
}

/// The MSD split of a range whose keys differ in `differ` on byte `d`, whose
/// values `counts` counted: the elements go to `other` by that byte, then each
/// bucket is sorted on its own, with the bits below byte `d`, as a few-valued range
/// when byte `d` took at most [`FEW_VALUES`] values (see `sort_range`: such an
/// in-cache bucket surveys its own bits, so that a bucket of one value is done
/// without counts).
fn split_on<V, K, F>(
    cur: &mut [V],
    other: &mut [V],
    in_cur: bool,
    key: F,
    differ: K,
    d: usize,
    counts: &[usize; 256],
) where
    V: Copy,
    K: RadixKey,
    F: Fn(V) -> K + Copy,
{
    let mut pos = *counts;
    exclusive_prefix(&mut pos);
    scatter(cur, other, &mut pos, d, key);
    let inherit = differ.and(K::low_bytes(d));
    let few = few_valued(counts);
    let (mut a, mut b) = (&mut *other, &mut *cur);
    for &c in counts {
        let (ha, ta) = std::mem::take(&mut a).split_at_mut(c);
        let (hb, tb) = std::mem::take(&mut b).split_at_mut(c);
        if c > 0 {
            sort_range(ha, hb, !in_cur, key, inherit, few);
        }
        a = ta;
        b = tb;
    }
}

/// What one part of the input says about its keys: counts of the neighbours that
/// rise and fall rather than flags, so that the loop that makes it is a few vector
/// compares and adds per element (flags, four `&=` of comparisons, came out as
/// per-element inserts into a vector register and kept the loop scalar).
#[derive(Clone, Copy)]
struct Survey<K> {
    first: K,
    last: K,
    /// Elements.
    len: usize,
    /// Neighbours (i, i + 1) with key(i) < key(i + 1).
    rises: usize,
    /// Neighbours with key(i) > key(i + 1).
    falls: usize,
    and: K,
    or: K,
}

impl<K: RadixKey> Survey<K> {
    /// Every key in order (equal ones allowed): nothing to sort.
    fn non_decreasing(&self) -> bool {
        self.falls == 0
    }

    /// Every key in reverse order (equal ones allowed).
    fn non_increasing(&self) -> bool {
        self.rises == 0
    }

    /// Strictly decreasing: a reversal alone sorts it (no run of equal keys).
    fn decreasing(&self) -> bool {
        self.falls + 1 == self.len
    }

    /// The survey of the complemented keys (`!key` for every key).
    fn complemented(self) -> Self {
        Survey {
            first: self.first.flip(),
            last: self.last.flip(),
            len: self.len,
            rises: self.falls,
            falls: self.rises,
            and: self.or.flip(),
            or: self.and.flip(),
        }
    }
}

/// Runs `f` compiled for the kernels' instruction-set level
/// ([`crate::kernels::isa`]), for the sort's read-mostly loops: the x86-64 baseline
/// has no 64-bit vector compare, so there they stay scalar (reversed 1e6 u64, one
/// thread, Intel VM: the whole sort 2.2 ms with them at baseline, 0.8 ms with them
/// compiled for AVX-512). `f` is inlined into each variant (one call
/// site, marked always), so its loops are compiled with that level's features.
#[inline(always)]
fn at_isa<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::kernels::{isa, Isa};
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq")]
        unsafe fn v4<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[target_feature(enable = "avx2")]
        unsafe fn v3<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        match isa() {
            // SAFETY: `isa` never returns a level above what the CPU has.
            Isa::Avx512 => return unsafe { v4(f) },
            // SAFETY: as above.
            Isa::Avx2 => return unsafe { v3(f) },
            Isa::Baseline => {}
        }
    }
    f()
}

/// The survey of `v` (not empty) by `key`, and how many of its elements fail `ok`
/// (at the kernels' instruction-set level).
fn survey_checked<V: Copy, K: RadixKey>(
    v: &[V],
    key: impl Fn(V) -> K,
    ok: impl Fn(V) -> bool,
) -> (Survey<K>, usize) {
    at_isa(
        #[inline(always)]
        || survey_body(v, key, ok),
    )
}

/// [`survey_checked`]'s loop: branch-free (it vectorises), with no early exit for
/// input found unsorted, since the and/or of the keys are needed anyway.
#[inline(always)]
fn survey_body<V: Copy, K: RadixKey>(
    v: &[V],
    key: impl Fn(V) -> K,
    ok: impl Fn(V) -> bool,
) -> (Survey<K>, usize) {
    let first = key(v[0]);
    let (mut rises, mut falls) = (0usize, 0usize);
    let mut bad = usize::from(!ok(v[0]));
    let (mut and, mut or) = (first, first);
    // Pairs of neighbours rather than a carried previous key: LLVM vectorises this
    // form (two loads one element apart), not the recurrence.
    for (&a, &b) in v.iter().zip(&v[1..]) {
        let (ka, kb) = (key(a), key(b));
        rises += usize::from(ka < kb);
        falls += usize::from(ka > kb);
        bad += usize::from(!ok(b));
        and = and.and(kb);
        or = or.or(kb);
    }
    let s = Survey {
        first,
        last: key(v[v.len() - 1]),
        len: v.len(),
        rises,
        falls,
        and,
        or,
    };
    (s, bad)
}

/// The survey of `v` (not empty) by `key`.
fn survey<V: Copy, K: RadixKey>(v: &[V], key: impl Fn(V) -> K) -> Survey<K> {
    survey_checked(v, key, |_| true).0
}

/// The survey of consecutive parts, from theirs (at least one).
fn merge_surveys<K: RadixKey>(parts: &[Survey<K>]) -> Survey<K> {
    let mut all = parts[0];
    for s in &parts[1..] {
        all.rises += s.rises + usize::from(all.last < s.first);
        all.falls += s.falls + usize::from(all.last > s.first);
        all.len += s.len;
        all.and = all.and.and(s.and);
        all.or = all.or.or(s.or);
        all.last = s.last;
    }
    all
}

/// A range of the input waiting to be sorted: where it lies, which buffer holds it,
/// and the bits in which its keys may differ (a superset: see [`sort_range`]).
#[derive(Clone, Copy, Debug)]
struct Piece<K> {
    start: usize,
    len: usize,
    in_data: bool,
    differ: K,
    /// A bucket of a split whose byte took at most [`FEW_VALUES`] values (see
    /// `sort_range`).
    few: bool,
}

impl<K: RadixKey> Piece<K> {
    /// All `n` elements, in the data buffer, their keys differing in `differ`.
    fn whole(n: usize, differ: K) -> Self {
        Piece {
            start: 0,
            len: n,
            in_data: true,
            differ,
            few: false,
        }
    }

    /// Part `p`'s contiguous share (of `k`) of the piece's elements in `buf`.
    ///
    /// # Safety
    /// `buf` holds the piece's range (one of the sort's two buffers), and nothing
    /// writes that range while the slice lives.
    unsafe fn share<'a, V>(&self, buf: Raw<V>, k: usize, p: usize) -> &'a [V] {
        let r = static_block(self.len, k, p);
        // SAFETY: the share lies within the piece (static_block stays within 0..len),
        // which lies within the buffer; no writes meanwhile (the caller's contract).
        unsafe { std::slice::from_raw_parts(buf.get().add(self.start + r.start), r.len()) }
    }

    /// As [`Piece::share`], writable.
    ///
    /// # Safety
    /// As [`Piece::share`], and nothing else reads or writes the share meanwhile.
    unsafe fn share_mut<'a, V>(&self, buf: Raw<V>, k: usize, p: usize) -> &'a mut [V] {
        let r = static_block(self.len, k, p);
        // SAFETY: within the piece, hence the buffer; exclusive (the contract).
        unsafe { std::slice::from_raw_parts_mut(buf.get().add(self.start + r.start), r.len()) }
    }
}

/// Sorts `data`, whose keys are non-increasing, on `k` parts: reversed, then (unless
/// `strict`: no two keys equal) each run of equal keys reversed back, which restores
/// their input order (stable). Both steps are parallel: reversed input is a
/// pattern users hit (data sorted the other way), and one thread doing it cost 4x
/// rayon's `par_sort_unstable` on 1e6 f64 (Intel VM, 2 threads).
fn unreverse<V, K, F>(data: &mut [V], key: F, k: usize, strict: bool)
where
    V: Copy + Send + Sync,
    K: RadixKey,
    F: Fn(V) -> K + Copy + Send + Sync,
{
    let n = data.len();
    let half = n / 2;
    let buf = Raw(data.as_mut_ptr());
    for_parts(k, move |p| {
        let r = static_block(half, k, p);
        // SAFETY: part p alone touches positions r (within 0..n/2) and their mirrors
        // n-r (within n-n/2..n): the parts' ranges partition 0..n/2, and the two
        // halves do not overlap.
        let (lo, hi) = unsafe {
            (
                std::slice::from_raw_parts_mut(buf.get().add(r.start), r.len()),
                std::slice::from_raw_parts_mut(buf.get().add(n - r.end), r.len()),
            )
        };
        at_isa(
            #[inline(always)]
            || swap_mirrored(lo, hi),
        );
    });
    if strict {
        return;
    }
    // Runs of equal keys begin at 0 and wherever a key differs from the one before.
    // Each part reverses the runs that begin in its share (the last may go on past
    // it), so first it finds its first beginning (reads only)...
    let mut first = vec![0usize; k];
    let out = Raw(first.as_mut_ptr());
    for_parts(k, move |p| {
        let r = static_block(n, k, p);
        // SAFETY: nothing writes data in this phase.
        let v = unsafe { std::slice::from_raw_parts(buf.get().cast_const(), n) };
        let mut i = r.start;
        while i > 0 && i < r.end && key(v[i]) == key(v[i - 1]) {
            i += 1;
        }
        // SAFETY: slot p belongs to part p alone.
        unsafe { out.get().add(p).write(i) };
    });
    // ...then the end of its last run is the next part's first beginning (or, past
    // parts with none, the one after, or n).
    let mut bound = vec![n; k];
    for p in (0..k.saturating_sub(1)).rev() {
        let next = static_block(n, k, p + 1);
        bound[p] = if first[p + 1] < next.end {
            first[p + 1]
        } else {
            bound[p + 1]
        };
    }
    let (first, bound) = (&first[..], &bound[..]);
    for_parts(k, move |p| {
        let r = static_block(n, k, p);
        if first[p] >= r.end {
            // No run begins here: the one that covers this share is another's.
            return;
        }
        // SAFETY: the ranges first[p]..bound[p] of the parts with a beginning are
        // disjoint (each ends where the next begins), and each is touched by its part
        // alone.
        let v =
            unsafe { std::slice::from_raw_parts_mut(buf.get().add(first[p]), bound[p] - first[p]) };
        at_isa(
            #[inline(always)]
            || reverse_runs(v, key),
        );
    });
}

/// Reverses each run of equal keys in `v`, which begins with one. Equal neighbours
/// are rare in most inputs, so blocks of neighbours are first tested all at once (a
/// loop without exits, which vectorises), and only a block with an equal pair is
/// walked run by run: 1e6 reversed random i32 (a hundred or so equal pairs), 2
/// threads on the Intel VM: the whole sort 2.2 -> 0.6 ms.
#[inline(always)]
fn reverse_runs<V: Copy, K: RadixKey>(v: &mut [V], key: impl Fn(V) -> K) {
    const BLOCK: usize = 64;
    let m = v.len();
    // v[i] begins a run.
    let mut i = 0;
    while i + 1 < m {
        let end = (i + BLOCK).min(m - 1);
        let mut equal = false;
        for (a, b) in v[i..end].iter().zip(&v[i + 1..=end]) {
            equal |= key(*a) == key(*b);
        }
        if !equal {
            // No neighbours in i..=end are equal: v[end] begins a run.
            i = end;
            continue;
        }
        while i < end {
            let ki = key(v[i]);
            let mut j = i + 1;
            while j < m && key(v[j]) == ki {
                j += 1;
            }
            v[i..j].reverse();
            i = j;
        }
    }
}

/// Swaps `lo[i]` with `hi[len - 1 - i]` for every i (equal lengths): a reversal's
/// work on two mirrored ranges. In blocks of fixed length so that the compiler turns
/// each block into vector loads, shuffles and stores (the element by element loop
/// stayed scalar).
#[inline(always)]
fn swap_mirrored<V: Copy>(lo: &mut [V], hi: &mut [V]) {
    const B: usize = 16;
    let len = lo.len();
    assert_eq!(len, hi.len(), "mirrored ranges of one length");
    let mut i = 0;
    while i + B <= len {
        let a: &mut [V; B] = (&mut lo[i..i + B]).try_into().expect("B elements");
        let b: &mut [V; B] = (&mut hi[len - i - B..len - i])
            .try_into()
            .expect("B elements");
        let keep = *a;
        for j in 0..B {
            a[j] = b[B - 1 - j];
        }
        for j in 0..B {
            b[j] = keep[B - 1 - j];
        }
        i += B;
    }
    for j in i..len {
        std::mem::swap(&mut lo[j], &mut hi[len - 1 - j]);
    }
}

/// Stable radix sort of `data` by `key` (see the module documentation).
fn radix_by<V, K, F>(
    data: &mut [V],
    key: F,
    opts: &Options,
    known: Option<Survey<K>>,
) -> Result<(), Error>
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
    let k = sort_team(n, opts);
    // The input's share of part p, for the survey (read only).
    let input = Piece::whole(n, K::ZERO);
    // One read, unless the caller made it: in order already, in reverse order, and
    // which key bits differ.
    let all = known.unwrap_or_else(|| {
        let mut parts = vec![survey(&data[..1], key); k];
        let src = Raw(data.as_mut_ptr());
        let out = Raw(parts.as_mut_ptr());
        for_parts(k, move |p| {
            // SAFETY: data is only read in this phase; slot p of `parts` belongs to
            // part p alone.
            unsafe { out.get().add(p).write(survey(input.share(src, k, p), key)) };
        });
        merge_surveys(&parts)
    });
    if all.non_decreasing() {
        return Ok(());
    }
    if all.non_increasing() {
        unreverse(data, key, k, all.decreasing());
        return Ok(());
    }
    let mut scratch: Vec<V> = Vec::new();
    scratch
        .try_reserve_exact(n)
        .map_err(|_| alloc_error("sort's scratch buffer", n.saturating_mul(size_of::<V>())))?;
    scratch.resize(n, data[0]);
    let differ = all.and.diff(all.or);
    if k == 1 {
        sort_range(data, &mut scratch, true, key, differ, true);
        return Ok(());
    }
    // Pieces at least this long are split by the whole team (one parallel MSD pass);
    // shorter ones are sorted each by one thread, largest first. A piece longer than
    // a thread's share would leave the others idle at the end.
    let split_len = (n / (2 * k)).max(LSD_MAX_BYTES / size_of::<V>().max(1));
    let mut split = vec![Piece::whole(n, differ)];
    let mut leaves = Vec::new();
    let mut counts = vec![0usize; k * 256];
    // The and and the or of each part's keys in the last count.
    let mut part_bits = vec![(K::MAX, K::ZERO); k];
    let bufs = (Raw(data.as_mut_ptr()), Raw(scratch.as_mut_ptr()));
    while let Some(piece) = split.pop() {
        let (src, dst) = if piece.in_data {
            (bufs.0, bufs.1)
        } else {
            (bufs.1, bufs.0)
        };
        // The most significant byte in which the piece's keys may differ (a piece is
        // only split when they may differ somewhere).
        let (cands, nc) = passes(piece.differ);
        let d = cands[nc - 1];
        let counts_raw = Raw(counts.as_mut_ptr());
        let bits_raw = Raw(part_bits.as_mut_ptr());
        for_parts(k, move |p| {
            // SAFETY: the piece is only read in this phase.
            let (local, and, or) = count_byte(unsafe { piece.share(src, k, p) }, d, key);
            // SAFETY: row p of `counts` and slot p of `part_bits` belong to part p
            // alone.
            unsafe {
                std::ptr::copy_nonoverlapping(local.as_ptr(), counts_raw.get().add(p * 256), 256);
                bits_raw.get().add(p).write((and, or));
            };
        });
        let spike =
            (0..256).any(|b| (0..k).map(|p| counts[p * 256 + b]).sum::<usize>() == piece.len);
        if spike {
            // Byte d is the same in every key of the piece: the bits of its keys, from
            // the same read, name exactly the bytes that differ in it (as in
            // `sort_range`); then the piece again on those.
            let (and, or) = part_bits
                .iter()
                .fold((K::MAX, K::ZERO), |(a, o), &(pa, po)| (a.and(pa), o.or(po)));
            let exact = Piece {
                differ: and.diff(or),
                ..piece
            };
            if exact.differ == K::ZERO {
                leaves.push(exact);
            } else {
                split.push(exact);
            }
            continue;
        }
        // Exclusive prefix over (byte value, part), offset by the piece's start.
        let mut bucket_len = [0usize; 256];
        let mut running = piece.start;
        for (b, len) in bucket_len.iter_mut().enumerate() {
            let from = running;
            for p in 0..k {
                let c = counts[p * 256 + b];
                counts[p * 256 + b] = running;
                running += c;
            }
            *len = running - from;
        }
        debug_assert_eq!(running, piece.start + piece.len);
        let counts_raw = Raw(counts.as_mut_ptr());
        let end = piece.start + piece.len;
        for_parts(k, move |p| {
            let mut pos = [0usize; 256];
            // SAFETY: row p was written above and is only read now.
            unsafe {
                std::ptr::copy_nonoverlapping(counts_raw.get().add(p * 256), pos.as_mut_ptr(), 256)
            };
            // SAFETY: the piece is only read in this phase (its elements go to `dst`).
            for &x in unsafe { piece.share(src, k, p) } {
                let slot = &mut pos[key(x).byte(d)];
                // The counts come from the same keys (a pure function of the same
                // elements), so the slots of all parts are a permutation of the
                // piece's positions.
                assert!(*slot < end, "radix slot out of range");
                // SAFETY: in bounds (checked); no other part writes this slot, and
                // the destination buffer is not read in this phase.
                unsafe { dst.get().add(*slot).write(x) };
                *slot += 1;
            }
        });
        let mut start = piece.start;
        let few = few_valued(&bucket_len);
        // Consecutive short buckets, sorted as one leaf (see LEAF_MIN_LEN).
        let mut group: Option<Piece<K>> = None;
        for &len in &bucket_len {
            let child = Piece {
                start,
                len,
                in_data: !piece.in_data,
                differ: piece.differ.and(K::low_bytes(d)),
                few,
            };
            start += len;
            if len == 0 {
                continue;
            }
            if len >= LEAF_MIN_LEN {
                leaves.extend(group.take());
                if len >= split_len && child.differ != K::ZERO {
                    split.push(child);
                } else {
                    leaves.push(child);
                }
                continue;
            }
            // The group's keys differ in byte d too (its buckets are in order of
            // it), so it keeps the piece's bits.
            let g = group.get_or_insert(Piece {
                len: 0,
                differ: piece.differ,
                ..child
            });
            g.len += len;
            if g.len >= LEAF_MIN_LEN {
                leaves.extend(group.take());
            }
        }
        leaves.extend(group);
    }
    // Largest first, so that the last pieces to start are short ones.
    leaves.sort_by_key(|l| std::cmp::Reverse(l.len));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (next, leaves) = (&next, &leaves[..]);
    for_parts(k, move |_| loop {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(l) = leaves.get(i) else { break };
        // SAFETY: the pieces are disjoint ranges of both buffers, and each is taken
        // by exactly one thread (the counter hands out every index once); no other
        // reference to the buffers is used in this phase.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts_mut(bufs.0.get().add(l.start), l.len),
                std::slice::from_raw_parts_mut(bufs.1.get().add(l.start), l.len),
            )
        };
        if l.in_data {
            sort_range(a, b, true, key, l.differ, l.few);
        } else {
            sort_range(b, a, false, key, l.differ, l.few);
        }
    });
    Ok(())
}
