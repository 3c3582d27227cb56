//! The exact sum: the correctly rounded (round-to-nearest-even) sum, and dot product,
//! of the exact real values of f32/f64 inputs. The result depends only on the multiset
//! of inputs: not on their order, the team size, the schedule, or how the data was
//! split between processes and merged back ([`ExactState`]).
//!
//! ## Design
//! Three layers, fastest first. The small and large superaccumulators follow R. M.
//! Neal, "Fast exact summation using small and large superaccumulators" (2015,
//! arXiv:1505.05571); the binned fast path is in the spirit of the exact extraction of
//! Rump, Ogita and Oishi ("Accurate floating-point summation", 2008) and of
//! ReproBLAS's binned sums (Demmel, Ahrens, Nguyen). The code is our own.
//!
//! - [`ExactState`], the *small superaccumulator*, holds the exact sum as an integer
//!   multiple of 2^-1074 (the least f64 subnormal, so every f64 and f32 is such a
//!   multiple) in `CHUNKS` signed 64-bit words of 32 bits each: word k weighs
//!   2^(32k-1074). A word has 31 bits of headroom, so about 2^29 additions of 32-bit
//!   pieces can go in before carries must be propagated (`NORMALISE_EVERY`).
//!   Adding a value touches three words. This state is what crosses threads and
//!   processes: merging two states is integer addition, exact and commutative.
//! - The *binned path* takes a block of `BLOCK` values at a time, vectorised. With
//!   |x| < 2^E for every x of the block, N lanes each keep two bins, floats that start
//!   at 1.5 * 2^k0 and 1.5 * 2^k1 with k0 = E + W and k1 = k0 - 53 + W (W = 10). Adding
//!   x to a bin b is Dekker's Fast2Sum (|b| > |x|): t = b + x, q = t - b, r = x - q are
//!   all exact, q is x rounded to the bin's grid 2^(k-52) and r the rest; r goes to
//!   the second bin the same way. A lane takes at most 2^(W-2) values, so a bin moves
//!   less than 2^(k-2) and stays in its binade, where its grid is fixed and every
//!   addition exact. When the last rest is zero for every value (true when each value
//!   lies within about 2^-33 of the block's largest), the bins, minus their start and
//!   scaled to integers, are exactly the block's sum and go into the small
//!   accumulator: two additions per block. Otherwise the block is refused and
//!   nothing is changed.
//! - A refused block goes to the *large superaccumulator*, `LargeAcc`: one 64-bit word
//!   per combination of sign and exponent (4096 for f64). Adding x adds x's raw bit
//!   pattern to the word of x's sign and exponent, and counts. The raw pattern is the
//!   stored fraction plus the sign and exponent bits, a known amount, so after n
//!   additions the word minus n times those bits is the exact sum of the fractions.
//!   That sum plus n times the implicit bit must fit in 64 bits: 2048 * 2^53 = 2^64,
//!   so a word is flushed into the small accumulator after `LIMIT` = 2048 additions
//!   and at the end. Infinities and NaN have their own words whose counter is always
//!   zero, which sends them to the slow path without a test in the hot loop. This
//!   costs one dependent read-modify-write per value (about 1 ns on the 2-core
//!   development machine, against a few tenths of a ns for the binned path), and is
//!   only allocated by a thread that needs it.
//!
//! f32 inputs are widened to f64 (exact) and take the same path; only the final
//! rounding differs. Each thread of the team has its own accumulators; the threads'
//! small states are merged at the end.
//!
//! ## Special values
//! Infinities and NaN are recorded as flags: a NaN, or both infinities, give NaN (the
//! default quiet NaN: payloads are not kept, since "the first NaN" has no meaning
//! for an order-independent sum); otherwise an infinity gives itself. A finite exact
//! sum that rounds beyond the largest finite value gives +-inf (IEEE 754 overflow;
//! Python's `math.fsum` raises `OverflowError` there instead). An exact zero gives
//! -0.0 when every input was -0.0, as IEEE 754 addition does (-0 + -0 = -0), else
//! +0.0; the empty sum is +0.0. (`math.fsum` returns +0.0 for all -0.0 inputs too, at
//! least up to CPython 3.13.)
//!
//! ## Dot products
//! Each product a*b is split exactly into p + e with p = fl(a*b): for f32 the product of
//! two widened f32 is exact in f64 (24 + 24 bits, exponents within f64's range), so
//! e = 0 and the f32 dot is exact for all finite inputs. For f64, e comes from a fused
//! multiply-add when the CPU has one, else from Dekker's splitting. This is exact only
//! while no product overflows (p = +-inf, which then gives +-inf or NaN as IEEE
//! arithmetic would) and no product falls below about 2^-969 in magnitude, where e
//! would be smaller than the least subnormal and is rounded. Without FMA, factors
//! above 2^995 in magnitude also lose their product's rounding error, since Dekker's
//! splitting overflows there.
//!
//! ## Range
//! The top word of [`ExactState`] weighs 2^1038 and is kept within +-2^62, so a state
//! holds any sum below 2^1100 in magnitude: 2^76 inputs of the largest magnitude. A
//! merge or accumulation that would leave that range fails with `InvalidArgument`
//! rather than lose exactness; no real data set comes near it.

use std::ops::Range;
use std::sync::Mutex;

use super::{block_len, PARALLEL_MIN_BYTES};
use crate::error::Error;
use crate::kernels::Element;
use crate::runtime;
use crate::schedule::{Chunker, Options};

/// Bits per word of the small accumulator (the rest of the i64 is carry headroom).
const CHUNK_BITS: u32 = 32;
/// Words of the small accumulator: the highest bit a flushed word can reach is
/// 2045 + 64 = 2109 places above 2^-1074 (largest exponent offset plus a 64-bit
/// word), in word 65; word 66 takes the carries.
pub(crate) const CHUNKS: usize = 67;
const TOP: usize = CHUNKS - 1;
/// The top word stays strictly within +-TOP_LIMIT. Two such words add without i64
/// overflow, and so does a top word plus the carries of one accumulation of at most
/// 2^61 inputs (each below 2^1024 = 2^-14 units of the top word).
const TOP_LIMIT: i64 = 1 << 62;
/// Propagate carries after this many additions: each adds less than 2^32 to a word, so
/// words stay below 2^32 + 2^29 * 2^32 < 2^62 in magnitude, far from i64 overflow.
pub(crate) const NORMALISE_EVERY: u32 = 1 << 29;

/// Additions per large-accumulator word before it must be flushed: after n additions
/// the fractions plus implicit bits sum to at most n * (2^53 - 1), below 2^64 for
/// n <= 2048.
pub(crate) const LIMIT: u16 = 2048;
/// Words of the large accumulator: one per sign and exponent pattern of an f64.
const ENTRIES: usize = 1 << 12;

const MANT_BITS: u32 = 52;
const FRAC_MASK: u64 = (1 << MANT_BITS) - 1;
const SIGN: u64 = 1 << 63;
const EXP_MASK: usize = 0x7FF;

/// Flag: a +inf was added.
const POS_INF: u64 = 1;
/// Flag: a -inf was added.
const NEG_INF: u64 = 2;
/// Flag: a NaN was added.
const NAN: u64 = 4;
/// Flag: at least one value was added.
const NONEMPTY: u64 = 8;
/// Flag: at least one value other than -0.0 was added (decides the sign of a zero sum).
const NOT_NEG_ZERO: u64 = 16;
const ALL_FLAGS: u64 = POS_INF | NEG_INF | NAN | NONEMPTY | NOT_NEG_ZERO;

/// Words of the serialised state ([`ExactState::to_words`]): tag, flags, chunks.
pub(crate) const STATE_WORDS: usize = 2 + CHUNKS;
/// Tag in word 0 of a serialised state: "PARFEX" and layout version 1. A state from a
/// machine of the other byte order shows it byte-swapped.
pub(crate) const STATE_TAG: i64 = 0x5041_5246_4558_0001;

/// A float type the exact sum is defined for: `f32` and `f64`.
pub trait ExactFloat: Element + sealed::Sealed {
    /// True when the product of two values, computed in f64, is exact.
    const PRODUCT_EXACT_IN_F64: bool;
    /// The value as an f64 (exact for both types).
    fn to_f64(self) -> f64;
    /// `data` itself when `Self` is f64, so that sums need not copy it.
    fn as_f64s(data: &[Self]) -> Option<&[f64]>;
    /// The exact sum held by `state`, correctly rounded to this type.
    fn from_state(state: &ExactState) -> Self;
}

mod sealed {
    /// Keeps [`super::ExactFloat`] to the two types its rounding is written for.
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

impl ExactFloat for f64 {
    const PRODUCT_EXACT_IN_F64: bool = false;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    fn as_f64s(data: &[f64]) -> Option<&[f64]> {
        Some(data)
    }
    fn from_state(state: &ExactState) -> f64 {
        f64::from_bits(state.round(&F64_FORMAT))
    }
}

impl ExactFloat for f32 {
    // 24 + 24 significant bits fit in 53, and |a*b| lies in [2^-298, 2^256), inside
    // f64's normal range.
    const PRODUCT_EXACT_IN_F64: bool = true;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn as_f64s(_: &[f32]) -> Option<&[f64]> {
        None
    }
    fn from_state(state: &ExactState) -> f32 {
        let bits = state.round(&F32_FORMAT);
        f32::from_bits(u32::try_from(bits).expect("F32_FORMAT rounds to 32 bits"))
    }
}

/// The exact sum of `data`, correctly rounded to `T`. Independent of the order of
/// `data`, of `opts` and of the team size.
pub fn sum<T: ExactFloat>(data: &[T], opts: &Options) -> T {
    T::from_state(&accumulate(&SumTerms(data), opts))
}

/// The exact dot product of `a` and `b`, correctly rounded to `T` (see the module
/// docs for the limits on f64 products). Panics when the lengths differ.
pub fn dot<T: ExactFloat>(a: &[T], b: &[T], opts: &Options) -> T {
    assert_eq!(a.len(), b.len(), "exact dot of slices of different lengths");
    T::from_state(&accumulate(&DotTerms(a, b), opts))
}

/// A partial exact sum that can be extended, merged with others in any order, rounded,
/// and serialised to plain words for another process (the small superaccumulator of
/// the module docs).
#[derive(Clone, Debug)]
pub struct ExactState {
    flags: u64,
    chunks: [i64; CHUNKS],
    /// Additions since carries were last propagated.
    pending: u32,
}

impl Default for ExactState {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for ExactState {
    /// Equal when they hold the same exact sum and flags (compared in normal form).
    fn eq(&self, other: &Self) -> bool {
        self.to_words() == other.to_words()
    }
}

impl Eq for ExactState {}

impl ExactState {
    /// The empty sum.
    pub fn new() -> Self {
        ExactState {
            flags: 0,
            chunks: [0; CHUNKS],
            pending: 0,
        }
    }

    /// Adds every element of `data`, using the team as `opts` says. Fails, leaving
    /// `self` unchanged, only when the sum would leave the state's range (module docs).
    pub fn add_slice<T: ExactFloat>(&mut self, data: &[T], opts: &Options) -> Result<(), Error> {
        let part = accumulate(&SumTerms(data), opts);
        self.merge(&part)
    }

    /// Adds every product `a[i] * b[i]`. Fails as [`ExactState::add_slice`], and when
    /// the lengths differ.
    pub fn add_dot<T: ExactFloat>(
        &mut self,
        a: &[T],
        b: &[T],
        opts: &Options,
    ) -> Result<(), Error> {
        if a.len() != b.len() {
            return Err(Error::InvalidArgument(format!(
                "exact dot of slices of different lengths ({} and {})",
                a.len(),
                b.len()
            )));
        }
        let part = accumulate(&DotTerms(a, b), opts);
        self.merge(&part)
    }

    /// Adds the sum held by `other`. Exact, so merges in any order and grouping give
    /// the same state. Fails, leaving `self` unchanged, when the result would leave the
    /// state's range (module docs).
    pub fn merge(&mut self, other: &ExactState) -> Result<(), Error> {
        let mut merged = self.clone();
        merged.merge_unchecked(other);
        if merged.chunks[TOP].unsigned_abs() >= TOP_LIMIT as u64 {
            return Err(Error::InvalidArgument(
                "the exact sum would exceed the range of parfor_exact_state (2^1100 in \
                 magnitude)"
                    .to_string(),
            ));
        }
        *self = merged;
        Ok(())
    }

    /// The sum correctly rounded to `T`.
    pub fn result<T: ExactFloat>(&self) -> T {
        T::from_state(self)
    }

    /// The state as plain words, in normal form (equal sums give equal words): word 0
    /// is `STATE_TAG`, word 1 the flags, words 2.. the chunks from least significant
    /// up, each but the last in 0..2^32, the last signed and within +-2^62.
    pub fn to_words(&self) -> [i64; STATE_WORDS] {
        let mut s = self.clone();
        s.normalise();
        let mut words = [0i64; STATE_WORDS];
        words[0] = STATE_TAG;
        words[1] = s.flags as i64;
        words[2..].copy_from_slice(&s.chunks);
        words
    }

    /// Reads words written by [`ExactState::to_words`], possibly by another process.
    /// Any other content is an error naming the first bad word, never a wrong state.
    pub fn from_words(words: &[i64; STATE_WORDS]) -> Result<ExactState, String> {
        if words[0] != STATE_TAG {
            return Err(if words[0].swap_bytes() == STATE_TAG {
                "was written on a machine of the other byte order (the layout is \
                 native-endian)"
                    .to_string()
            } else {
                format!(
                    "word 0 is {:#x}, not the tag {STATE_TAG:#x}: initialise the state with \
                     parfor_exact_init",
                    words[0]
                )
            });
        }
        let flags = words[1] as u64;
        if flags & !ALL_FLAGS != 0 {
            return Err(format!(
                "word 1 (flags) is {flags:#x}: only bits {ALL_FLAGS:#x} may be set"
            ));
        }
        let mut chunks = [0i64; CHUNKS];
        chunks.copy_from_slice(&words[2..]);
        for (k, &c) in chunks[..TOP].iter().enumerate() {
            if !(0..1i64 << CHUNK_BITS).contains(&c) {
                return Err(format!("word {} is {c}, outside 0..2^32", k + 2));
            }
        }
        // unsigned_abs: i64::MIN has no i64 absolute value.
        if chunks[TOP].unsigned_abs() >= TOP_LIMIT as u64 {
            return Err(format!(
                "word {} is {}, outside -2^62..2^62",
                TOP + 2,
                chunks[TOP]
            ));
        }
        Ok(ExactState {
            flags,
            chunks,
            pending: 0,
        })
    }

    /// Adds `other` without the range check. Both top words must be within
    /// +-TOP_LIMIT: true of every state `from_words` accepts, and of states built here
    /// from at most 2^61 inputs (their top words are below 2^48 in magnitude).
    fn merge_unchecked(&mut self, other: &ExactState) {
        let mut other = other.clone();
        other.normalise();
        self.normalise();
        // Both in normal form: words below 2^32 add without overflow, and the top
        // words are within +-2^62 (TOP_LIMIT), so their sum fits an i64.
        for (a, b) in self.chunks.iter_mut().zip(other.chunks.iter()) {
            *a += *b;
        }
        self.flags |= other.flags;
        self.normalise();
    }

    /// Propagates carries so that every word but the top is in 0..2^32.
    fn normalise(&mut self) {
        for k in 0..TOP {
            let carry = self.chunks[k] >> CHUNK_BITS;
            self.chunks[k] -= carry << CHUNK_BITS;
            self.chunks[k + 1] += carry;
        }
        self.pending = 0;
    }

    /// Adds (or subtracts, when `negative`) `mag * 2^(offset - 1074)`.
    #[inline]
    fn add_magnitude(&mut self, negative: bool, mag: u64, offset: u32) {
        if mag == 0 {
            return;
        }
        let q = (offset / CHUNK_BITS) as usize;
        // At most 64 + 31 = 95 bits: three 32-bit pieces, the last below 2^31.
        let v = u128::from(mag) << (offset % CHUNK_BITS);
        let pieces = [
            i64::from(v as u32),
            i64::from((v >> 32) as u32),
            (v >> 64) as i64,
        ];
        for (chunk, piece) in self.chunks[q..q + 3].iter_mut().zip(pieces) {
            if negative {
                *chunk -= piece;
            } else {
                *chunk += piece;
            }
        }
        self.pending += 1;
        if self.pending >= NORMALISE_EVERY {
            self.normalise();
        }
    }

    /// Records an infinity or NaN given by its f64 bit pattern.
    #[cold]
    fn add_special(&mut self, bits: u64) {
        self.flags |= if bits & FRAC_MASK != 0 {
            NAN
        } else if bits >> 63 == 0 {
            POS_INF
        } else {
            NEG_INF
        };
    }

    /// Adds one f64 directly.
    #[inline]
    fn add_one(&mut self, x: f64) {
        let bits = x.to_bits();
        let exp = (bits >> MANT_BITS) as usize & EXP_MASK;
        if exp == EXP_MASK {
            self.add_special(bits);
            return;
        }
        self.flags |= NONEMPTY;
        if bits != SIGN {
            self.flags |= NOT_NEG_ZERO;
        }
        let implicit = if exp == 0 { 0 } else { 1 << MANT_BITS };
        self.add_magnitude(
            bits >> 63 != 0,
            (bits & FRAC_MASK) | implicit,
            exp.max(1) as u32 - 1,
        );
    }

    /// The sign and magnitude of the sum as 32-bit limbs, least significant first.
    fn magnitude(&self) -> (bool, [u32; LIMBS]) {
        let mut s = self.clone();
        s.normalise();
        let negative = s.chunks[TOP] < 0;
        if negative {
            for c in s.chunks.iter_mut() {
                *c = -*c;
            }
            s.normalise();
        }
        let mut limbs = [0u32; LIMBS];
        for (limb, &c) in limbs.iter_mut().zip(&s.chunks[..TOP]) {
            *limb = c as u32;
        }
        // The top word is now in 0..2^62 (normal form of a non-negative value).
        let top = s.chunks[TOP] as u64;
        limbs[TOP] = top as u32;
        limbs[TOP + 1] = (top >> 32) as u32;
        (negative, limbs)
    }

    /// The sum correctly rounded to nearest-even in `f`, as that format's bit pattern.
    fn round(&self, f: &Format) -> u64 {
        let sign = 1u64 << (f.total_bits - 1);
        let inf = f.exp_all_ones << f.frac_bits;
        if self.flags & NAN != 0 || self.flags & (POS_INF | NEG_INF) == POS_INF | NEG_INF {
            return inf | 1 << (f.frac_bits - 1);
        }
        if self.flags & POS_INF != 0 {
            return inf;
        }
        if self.flags & NEG_INF != 0 {
            return sign | inf;
        }
        let (negative, limbs) = self.magnitude();
        let sign = if negative { sign } else { 0 };
        let Some(high) = highest_bit(&limbs) else {
            let only_neg_zeros = self.flags & (NONEMPTY | NOT_NEG_ZERO) == NONEMPTY;
            return if only_neg_zeros {
                1 << (f.total_bits - 1)
            } else {
                0
            };
        };
        let precision = f.frac_bits + 1;
        // Position (in units of 2^-1074) of the result's last bit: `precision` bits
        // below the leading one, but never finer than the format's least subnormal.
        let mut ulp = (high + 1).saturating_sub(precision).max(f.quantum_bit);
        let mut keep = bits_at(&limbs, ulp, precision);
        let half = ulp > 0 && bits_at(&limbs, ulp - 1, 1) == 1;
        let sticky = ulp > 1 && any_below(&limbs, ulp - 1);
        if half && (sticky || keep & 1 == 1) {
            keep += 1;
        }
        if keep >> precision != 0 {
            // Rounded up into the next binade; the bit shifted out is 0.
            keep >>= 1;
            ulp += 1;
        }
        if keep == 0 {
            // Below half the least subnormal (only an f32 dot can get here).
            return sign;
        }
        if keep >> f.frac_bits == 0 {
            // Subnormal: ulp is the least subnormal, the exponent field 0.
            return sign | keep;
        }
        let biased = u64::from(ulp - f.quantum_bit + 1);
        if biased >= f.exp_all_ones {
            return sign | inf;
        }
        sign | biased << f.frac_bits | (keep & ((1 << f.frac_bits) - 1))
    }
}

/// Limbs of a magnitude: the 66 low chunks and the top word's 62 bits in two limbs.
const LIMBS: usize = CHUNKS + 1;

/// A binary interchange format to round to.
struct Format {
    /// Stored fraction bits.
    frac_bits: u32,
    /// The all-ones exponent field (infinities and NaN).
    exp_all_ones: u64,
    /// Position of the least subnormal above 2^-1074.
    quantum_bit: u32,
    /// Width of the format.
    total_bits: u32,
}

const F64_FORMAT: Format = Format {
    frac_bits: 52,
    exp_all_ones: 0x7FF,
    quantum_bit: 0,
    total_bits: 64,
};

/// The least f32 subnormal is 2^-149, 925 places above 2^-1074.
const F32_FORMAT: Format = Format {
    frac_bits: 23,
    exp_all_ones: 0xFF,
    quantum_bit: 1074 - 149,
    total_bits: 32,
};

fn highest_bit(limbs: &[u32; LIMBS]) -> Option<u32> {
    let k = limbs.iter().rposition(|&l| l != 0)?;
    Some(k as u32 * 32 + 31 - limbs[k].leading_zeros())
}

/// `n` (at most 53) bits of `limbs` starting at bit `lo`, as an integer.
fn bits_at(limbs: &[u32; LIMBS], lo: u32, n: u32) -> u64 {
    let k = (lo / 32) as usize;
    let limb = |i: usize| u128::from(limbs.get(i).copied().unwrap_or(0));
    // 53 + 31 bits fit in three limbs.
    let window = limb(k) | limb(k + 1) << 32 | limb(k + 2) << 64;
    ((window >> (lo % 32)) as u64) & ((1u64 << n) - 1)
}

/// True when any bit of `limbs` below bit `pos` is set.
fn any_below(limbs: &[u32; LIMBS], pos: u32) -> bool {
    let k = (pos / 32) as usize;
    let partial = limbs.get(k).map_or(0, |&l| l & ((1u32 << (pos % 32)) - 1));
    partial != 0 || limbs[..k.min(LIMBS)].iter().any(|&l| l != 0)
}

/// Values of one block of the binned path (see [`deposit`]). With at most 8 lanes per
/// block on the baseline instruction set, a lane takes at most 128 values, below the
/// 2^(BIN_W - 2) = 256 that keeps each bin inside its binade.
pub(crate) const BLOCK: usize = 1024;
/// Headroom bits of a bin (the `W` of the module docs).
const BIN_W: i32 = 10;
const _: () = assert!(BLOCK / 8 < 1 << (BIN_W - 2));

/// 2^k as an f64, for k in -1022..=1023.
fn pow2(k: i32) -> f64 {
    debug_assert!((-1022..=1023).contains(&k));
    f64::from_bits(((k + 1023) as u64) << MANT_BITS)
}

/// The largest magnitude in `xs`, as bits with the sign cleared (so a signed compare
/// orders them; inf and NaN patterns are above every finite one).
#[inline(always)]
fn top_bits_imp<const N: usize>(xs: &[f64]) -> u64 {
    let mut top = [0i64; N];
    let mut groups = xs.chunks_exact(N);
    for g in &mut groups {
        for j in 0..N {
            top[j] = top[j].max((g[j].to_bits() & !SIGN) as i64);
        }
    }
    for (t, x) in top.iter_mut().zip(groups.remainder()) {
        *t = (*t).max((x.to_bits() & !SIGN) as i64);
    }
    top.iter().copied().max().unwrap_or(0) as u64
}

/// Adds the block `xs` (at most `BLOCK` values, largest magnitude `top` as given by
/// [`top_bits`]) to `small` through two levels of bins and returns true; or returns
/// false, leaving `small` unchanged, when the block holds an infinity or NaN, or values
/// too far apart in magnitude for two levels to hold them exactly. See the module docs
/// for why each step is exact. Also returns the `top` of `next`, the following block,
/// read in the same loop so that its loads from memory overlap this block's work.
#[inline(always)]
fn deposit_imp<const N: usize>(
    xs: &[f64],
    top: u64,
    next: &[f64],
    small: &mut ExactState,
) -> (bool, u64) {
    debug_assert!(xs.len() <= BLOCK);
    let e_top = (top >> MANT_BITS) as i32;
    if e_top == EXP_MASK as i32 {
        return (false, top_bits_imp::<N>(next));
    }
    if top == 0 {
        // All +-0.0: only the flags change.
        small.flags |= NONEMPTY;
        if xs.iter().any(|x| x.to_bits() != SIGN) {
            small.flags |= NOT_NEG_ZERO;
        }
        return (true, top_bits_imp::<N>(next));
    }
    // Every |x| < 2^emax. Level 0's bins sit at 1.5 * 2^k0, k0 = emax + W, and take
    // multiples of 2^(k0-52); level 1 takes what is left, below 2^(k0-53), at k1.
    let emax = e_top.max(1) - 1022;
    let k0 = emax + BIN_W;
    let k1 = k0 - 53 + BIN_W;
    // k0 <= 1023 keeps the bins finite; k1 >= -971 keeps 2^(52 - k1), the scale that
    // turns a bin into an integer, finite too.
    if k0 > 1023 || k1 < -971 {
        return (false, top_bits_imp::<N>(next));
    }
    let (mid0, mid1) = (1.5 * pow2(k0), 1.5 * pow2(k1));
    let mut bin0 = [mid0; N];
    let mut bin1 = [mid1; N];
    // Bits of what is left after level 1, shifted to drop the sign of a -0.0.
    let mut rest = [0u64; N];
    let mut next_top = [0i64; N];
    #[inline(always)]
    fn step<const N: usize>(
        j: usize,
        x: f64,
        bin0: &mut [f64; N],
        bin1: &mut [f64; N],
        rest: &mut [u64; N],
    ) {
        // Fast2Sum (|bin| > |x|): t - bin is exactly the part of x on the bin's grid,
        // and x - q exactly the rest.
        let t = bin0[j] + x;
        let q = t - bin0[j];
        bin0[j] = t;
        let r = x - q;
        let t = bin1[j] + r;
        let q = t - bin1[j];
        bin1[j] = t;
        rest[j] |= (r - q).to_bits() << 1;
    }
    let both = xs.len().min(next.len()) / N * N;
    for (g, h) in xs[..both].chunks_exact(N).zip(next[..both].chunks_exact(N)) {
        prefetch_after(h);
        for j in 0..N {
            step(j, g[j], &mut bin0, &mut bin1, &mut rest);
            next_top[j] = next_top[j].max((h[j].to_bits() & !SIGN) as i64);
        }
    }
    let mut groups = xs[both..].chunks_exact(N);
    for g in &mut groups {
        let g: &[f64; N] = g.try_into().expect("chunks_exact yields N values");
        for (j, &x) in g.iter().enumerate() {
            step(j, x, &mut bin0, &mut bin1, &mut rest);
        }
    }
    for (j, &x) in groups.remainder().iter().enumerate() {
        step(j, x, &mut bin0, &mut bin1, &mut rest);
    }
    let next_top =
        (next_top.iter().copied().max().unwrap_or(0) as u64).max(top_bits_imp::<N>(&next[both..]));
    if rest.iter().any(|&r| r != 0) {
        return (false, next_top);
    }
    // Some value is nonzero (top > 0).
    small.flags |= NONEMPTY | NOT_NEG_ZERO;
    for (bins, mid, k) in [(&bin0, mid0, k0), (&bin1, mid1, k1)] {
        // bin - mid is exact (same binade), a multiple of 2^(k-52) below 2^(k-2) in
        // magnitude, so scaled by 2^(52-k) it is an integer below 2^50, and N of them
        // sum below 2^56.
        let scale = pow2(52 - k);
        let total: i64 = bins.iter().map(|&b| ((b - mid) * scale) as i64).sum();
        small.add_magnitude(total < 0, total.unsigned_abs(), (k + 1022) as u32);
    }
    (true, next_top)
}

/// Asks the CPU to start loading the cache lines one block after `h`: the block after
/// `next` in [`deposit_imp`]. Demand loads of `next` alone leave too few lines in
/// flight to stream from memory while the bins are worked on: on one thread of the
/// 2-core development machine the exact sum of 1e7 f64 took 7.8 ms without this and
/// 4.8 ms with it, against 3.2 ms for the fast sum.
#[inline(always)]
fn prefetch_after(h: &[f64]) {
    // Elsewhere the hardware prefetchers are left to it.
    #[cfg(not(target_arch = "x86_64"))]
    let _ = h;
    #[cfg(target_arch = "x86_64")]
    for line in (0..h.len()).step_by(64 / std::mem::size_of::<f64>()) {
        // wrapping_add: the address may lie past the end of the data, which a
        // prefetch tolerates (it never faults and changes nothing visible).
        let p = h.as_ptr().wrapping_add(BLOCK + line);
        // SAFETY: a prefetch has no memory-safety preconditions, and SSE, which it
        // needs, is part of the x86_64 baseline.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast()) };
    }
}

/// Defines `$name`, which runs `$imp::<N>` compiled for the best vector extension the
/// CPU has, with N lanes to match its registers. The lane count changes nothing in
/// the result of the exact sum, only its speed.
macro_rules! multiversion {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $imp:ident) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512dq,avx512vl")]
                fn v4($($arg: $ty),*) -> $ret {
                    $imp::<32>($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                fn v3($($arg: $ty),*) -> $ret {
                    $imp::<16>($($arg),*)
                }
                if has_avx512() {
                    // SAFETY: the CPU has the features `v4` is compiled for (checked).
                    return unsafe { v4($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: as above, for AVX2.
                    return unsafe { v3($($arg),*) };
                }
            }
            $imp::<8>($($arg),*)
        }
    };
}

multiversion! {
    /// [`top_bits_imp`] for this CPU.
    fn top_bits(xs: &[f64]) -> u64 = top_bits_imp
}

multiversion! {
    /// [`deposit_imp`] for this CPU.
    fn deposit(xs: &[f64], top: u64, next: &[f64], small: &mut ExactState) -> (bool, u64) = deposit_imp
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    // std caches CPUID; each check is an atomic load.
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("avx512vl")
}

/// Blocks shorter than this that the binned path refuses are added value by value;
/// longer ones go through the large accumulator (allocated on first need).
const DIRECT_MAX: usize = 64;

/// One thread's accumulator: blocks go through [`deposit`] into `small`, or, when the
/// binned path refuses them, through the large accumulator.
struct Acc {
    small: ExactState,
    large: Option<LargeAcc>,
}

impl Acc {
    fn new() -> Self {
        Acc {
            small: ExactState::new(),
            large: None,
        }
    }

    /// Adds a block of at most `BLOCK` values.
    fn add_block(&mut self, xs: &[f64]) {
        let top = top_bits(xs);
        self.add_block_with_top(xs, top, &[]);
    }

    /// Adds a block whose `top_bits` is `top`, and returns the `top_bits` of `next`.
    fn add_block_with_top(&mut self, xs: &[f64], top: u64, next: &[f64]) -> u64 {
        let (done, next_top) = deposit(xs, top, next, &mut self.small);
        if !done && xs.len() <= DIRECT_MAX {
            for &x in xs {
                self.small.add_one(x);
            }
        } else if !done {
            let large = self.large.get_or_insert_with(LargeAcc::new);
            for &x in xs {
                large.add(&mut self.small, x);
            }
        }
        next_top
    }

    /// Adds any number of values, block by block, each block's largest magnitude
    /// found while the previous one is binned.
    fn add_all(&mut self, xs: &[f64]) {
        let mut blocks = xs.chunks(BLOCK).peekable();
        let mut top = blocks.peek().map_or(0, |b| top_bits(b));
        while let Some(block) = blocks.next() {
            let next = blocks.peek().copied().unwrap_or(&[]);
            top = self.add_block_with_top(block, top, next);
        }
    }

    fn finish(mut self) -> ExactState {
        if let Some(large) = self.large.take() {
            large.finish(&mut self.small);
        }
        self.small
    }
}

/// The large superaccumulator (module docs); it flushes into a small one.
struct LargeAcc {
    /// Wrapping sum of the raw bit patterns added to each sign-and-exponent word.
    sums: Box<[u64; ENTRIES]>,
    /// Additions each word can still take before a flush; 0 forever for inf/NaN.
    room: Box<[u16; ENTRIES]>,
}

impl LargeAcc {
    fn new() -> Self {
        let mut room = Box::new([LIMIT; ENTRIES]);
        room[EXP_MASK] = 0;
        room[ENTRIES - 1] = 0;
        LargeAcc {
            sums: Box::new([0; ENTRIES]),
            room,
        }
    }

    #[inline(always)]
    fn add(&mut self, small: &mut ExactState, x: f64) {
        let bits = x.to_bits();
        // Below 4096, so the indexing below needs no bounds check.
        let ix = (bits >> MANT_BITS) as usize;
        let room = self.room[ix];
        if room == 0 {
            self.add_slow(small, ix, bits);
        } else {
            self.room[ix] = room - 1;
            self.sums[ix] = self.sums[ix].wrapping_add(bits);
        }
    }

    /// The full word `ix` (or an inf/NaN): flush, then add `bits`.
    #[cold]
    #[inline(never)]
    fn add_slow(&mut self, small: &mut ExactState, ix: usize, bits: u64) {
        if ix & EXP_MASK == EXP_MASK {
            small.add_special(bits);
            return;
        }
        self.flush(small, ix);
        self.room[ix] = LIMIT - 1;
        self.sums[ix] = bits;
    }

    /// Moves word `ix` into `small`.
    fn flush(&mut self, small: &mut ExactState, ix: usize) {
        let n = u64::from(LIMIT - self.room[ix]);
        if n == 0 {
            return;
        }
        // Each addition brought the sign and exponent bits, ix << 52, along with the
        // fraction; the fractions alone sum to less than 2048 * 2^52 = 2^63, so the
        // wrapping difference is exact.
        let fractions = self.sums[ix].wrapping_sub(n.wrapping_mul((ix as u64) << MANT_BITS));
        let exp = ix & EXP_MASK;
        let implicit = if exp == 0 { 0 } else { n << MANT_BITS };
        let mag = fractions + implicit;
        small.flags |= NONEMPTY;
        // Word 0x800 (sign set, exponent 0) holds -0.0 and negative subnormals; only
        // -0.0 leaves its fractions at zero.
        if ix != 1 << 11 || mag != 0 {
            small.flags |= NOT_NEG_ZERO;
        }
        small.add_magnitude(ix >> 11 != 0, mag, exp.max(1) as u32 - 1);
        self.room[ix] = LIMIT;
        self.sums[ix] = 0;
    }

    /// Flushes every word into `small`.
    fn finish(mut self, small: &mut ExactState) {
        for ix in 0..ENTRIES {
            if self.room[ix] != LIMIT && ix & EXP_MASK != EXP_MASK {
                self.flush(small, ix);
            }
        }
    }
}

/// The terms of an exact reduction: elements or products, by index.
trait Terms: Sync {
    /// Number of elements (or products).
    fn len(&self) -> usize;
    /// Size of one element, for the block partition.
    fn elem_size(&self) -> usize;
    /// Bytes read per element, for the decision to use the team.
    fn bytes_per_elem(&self) -> usize;
    /// Adds the terms of `r` to `acc`.
    fn feed(&self, r: Range<usize>, acc: &mut Acc);
}

struct SumTerms<'a, T>(&'a [T]);

impl<T: ExactFloat> Terms for SumTerms<'_, T> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn elem_size(&self) -> usize {
        std::mem::size_of::<T>()
    }
    fn bytes_per_elem(&self) -> usize {
        std::mem::size_of::<T>()
    }
    fn feed(&self, r: Range<usize>, acc: &mut Acc) {
        let data = &self.0[r];
        if let Some(xs) = T::as_f64s(data) {
            acc.add_all(xs);
            return;
        }
        let mut wide = [0f64; BLOCK];
        for block in data.chunks(BLOCK) {
            for (w, &x) in wide.iter_mut().zip(block) {
                *w = x.to_f64();
            }
            acc.add_block(&wide[..block.len()]);
        }
    }
}

struct DotTerms<'a, T>(&'a [T], &'a [T]);

impl<T: ExactFloat> Terms for DotTerms<'_, T> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn elem_size(&self) -> usize {
        std::mem::size_of::<T>()
    }
    fn bytes_per_elem(&self) -> usize {
        2 * std::mem::size_of::<T>()
    }
    fn feed(&self, r: Range<usize>, acc: &mut Acc) {
        let (a, b) = (&self.0[r.clone()], &self.1[r]);
        let mut p = [0f64; BLOCK];
        let mut e = [0f64; BLOCK];
        let fma = has_fma();
        for (a, b) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
            let n = a.len();
            if T::PRODUCT_EXACT_IN_F64 {
                for ((p, &x), &y) in p.iter_mut().zip(a).zip(b) {
                    *p = x.to_f64() * y.to_f64();
                }
                acc.add_block(&p[..n]);
                continue;
            }
            if fma {
                two_products_fma(a, b, &mut p[..n], &mut e[..n]);
            } else {
                for (((p, e), &x), &y) in p.iter_mut().zip(e.iter_mut()).zip(a).zip(b) {
                    (*p, *e) = two_product_dekker(x.to_f64(), y.to_f64());
                }
            }
            acc.add_block(&p[..n]);
            acc.add_block(&e[..n]);
        }
    }
}

/// True when `f64::mul_add` runs as one hardware instruction here.
fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(target_arch = "aarch64")]
    {
        // FMA is part of the base AArch64 instruction set.
        true
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// The products a*b split exactly into p + e by a fused multiply-add, compiled for the
/// vector extensions the CPU has. Call only when [`has_fma`] is true.
fn two_products_fma<T: ExactFloat>(a: &[T], b: &[T], p: &mut [f64], e: &mut [f64]) {
    #[inline(always)]
    fn imp<T: ExactFloat>(a: &[T], b: &[T], p: &mut [f64], e: &mut [f64]) {
        for (((p, e), &x), &y) in p.iter_mut().zip(e.iter_mut()).zip(a).zip(b) {
            (*p, *e) = two_product_fma(x.to_f64(), y.to_f64());
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512dq,avx512vl,fma")]
        fn v4<T: ExactFloat>(a: &[T], b: &[T], p: &mut [f64], e: &mut [f64]) {
            imp(a, b, p, e)
        }
        #[target_feature(enable = "avx2,fma")]
        fn v3<T: ExactFloat>(a: &[T], b: &[T], p: &mut [f64], e: &mut [f64]) {
            imp(a, b, p, e)
        }
        #[target_feature(enable = "fma")]
        fn v1<T: ExactFloat>(a: &[T], b: &[T], p: &mut [f64], e: &mut [f64]) {
            imp(a, b, p, e)
        }
        assert!(has_fma(), "two_products_fma called without FMA");
        if has_avx512() {
            // SAFETY: the CPU has AVX-512 (checked above) and FMA (asserted).
            unsafe { v4(a, b, p, e) }
        } else if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked above) and FMA (asserted).
            unsafe { v3(a, b, p, e) }
        } else {
            // SAFETY: the CPU has FMA (asserted).
            unsafe { v1(a, b, p, e) }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    imp(a, b, p, e)
}

/// p = fl(a*b) and e = a*b - p by a fused multiply-add; exact unless the product
/// overflows or falls below about 2^-969. The sign is chosen so that an exact
/// product gives e = -0.0, which leaves an all -0.0 sum at -0.0. An infinite p has no
/// finite error (and inf - inf would turn an overflow into NaN): e is then -0.0.
#[inline(always)]
fn two_product_fma(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    let e = -((-a).mul_add(b, p));
    (p, if p.is_finite() { e } else { -0.0 })
}

/// p = fl(a*b) and e = a*b - p, by Dekker's splitting: exact unless a product
/// overflows, underflows, or a factor exceeds 2^995 (the split then overflows and
/// the error term is dropped). An exact product gives e = -0.0 (see the FMA version).
pub(crate) fn two_product_dekker(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    let (ah, al) = split(a);
    let (bh, bl) = split(b);
    let e = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
    if e == 0.0 || !e.is_finite() || !p.is_finite() {
        (p, -0.0)
    } else {
        (p, e)
    }
}

/// Splits `a` into two halves of at most 26 significant bits each (Veltkamp), with
/// a = hi + lo exactly.
fn split(a: f64) -> (f64, f64) {
    // 2^27 + 1: splits 53 bits into 26 + 27 (the lower half's sign absorbs one).
    const SPLITTER: f64 = 134_217_729.0;
    let c = SPLITTER * a;
    let hi = c - (c - a);
    (hi, a - hi)
}

/// The exact sum of `terms`, on the team as `opts` says: each thread feeds the blocks
/// the schedule gives it into its own accumulator, and the threads' small
/// accumulators are merged, which is exact and so independent of who did what.
fn accumulate<W: Terms>(terms: &W, opts: &Options) -> ExactState {
    let len = terms.len();
    if len == 0 {
        return ExactState::new();
    }
    let block = block_len(len, terms.elem_size());
    let blocks = len.div_ceil(block);
    let parallel = len.saturating_mul(terms.bytes_per_elem()) >= PARALLEL_MIN_BYTES;
    let chunker = Chunker::for_call(
        blocks,
        opts.schedule(),
        opts.chunk().div_ceil(block),
        if parallel { opts.num_threads() } else { 1 },
    );
    let total = Mutex::new(ExactState::new());
    let ran = runtime::fork_join(
        chunker.team(),
        if parallel { blocks } else { 1 },
        &|tid, team| {
            let mut acc = Acc::new();
            chunker.for_each(tid, team, |bs| {
                terms.feed(bs.start * block..(bs.end * block).min(len), &mut acc);
                true
            });
            let part = acc.finish();
            total
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .merge_unchecked(&part);
        },
    );
    match ran {
        Ok(()) => total.into_inner().unwrap_or_else(|e| e.into_inner()),
        Err(e) => {
            // No part ran (the team failed to start): compute here rather than fail.
            eprintln!("parfor: {e}; summing on the calling thread");
            let mut acc = Acc::new();
            terms.feed(0..len, &mut acc);
            acc.finish()
        }
    }
}

#[cfg(test)]
mod test;
