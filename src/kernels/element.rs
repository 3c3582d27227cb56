//! The arithmetic each element type needs, with OpenMP's meaning: integers wrap,
//! floats follow IEEE 754 with no reassociation and no fused multiply-add.

use crate::dtype::DType;

/// A slice of one of the float element types.
#[derive(Clone, Copy, Debug)]
pub enum Floats<'a> {
    /// f32 elements.
    F32(&'a [f32]),
    /// f64 elements.
    F64(&'a [f64]),
}

/// An element type parfor reduces over. Implemented for the ten C types only.
pub trait Element:
    Copy + Send + Sync + PartialOrd + PartialEq + std::fmt::Debug + Default + 'static
{
    /// The runtime dtype of this type.
    const DTYPE: DType;
    /// True for f32 and f64, whose arithmetic is not associative.
    const IS_FLOAT: bool;
    /// Additive identity.
    const ZERO: Self;
    /// Multiplicative identity (and the "true" of logical reductions).
    const ONE: Self;
    /// Identity of bitwise and (all bits set; unused for floats).
    const ALL_ONES: Self;
    /// Sum (wrapping for integers).
    fn add(self, other: Self) -> Self;
    /// Product (wrapping for integers).
    fn mul(self, other: Self) -> Self;
    /// Bitwise and (of the bit patterns for floats; never used for them).
    fn bit_and(self, other: Self) -> Self;
    /// Bitwise or.
    fn bit_or(self, other: Self) -> Self;
    /// Bitwise exclusive or.
    fn bit_xor(self, other: Self) -> Self;
    /// True for a float NaN; always false for integers.
    fn is_nan(self) -> bool;
    /// True unless the value equals zero (NaN is nonzero).
    fn is_nonzero(self) -> bool;
    /// The slice as what it is when `Self` is a float type; `None` for integers.
    fn as_floats(_x: &[Self]) -> Option<Floats<'_>> {
        None
    }
    /// True for the signed integer types (and the floats).
    const SIGNED: bool;
    /// The value as f64 (rounded to nearest for 64-bit integers).
    fn num_f64(self) -> f64;
    /// The value as i64: integers sign- or zero-extended, u64 wrapping (two's
    /// complement); floats truncated as Rust's `as` (never used by the reductions).
    fn num_i64(self) -> i64;
    /// The value as u64: unsigned zero-extended, signed wrapping; floats as `as`.
    fn num_u64(self) -> u64;
    /// From f64: rounded to nearest for f32; integers as Rust's `as`.
    fn from_f64(v: f64) -> Self;
    /// From i64, wrapping to the width (two's complement).
    fn from_i64(v: i64) -> Self;
    /// From u64, wrapping to the width.
    fn from_u64(v: u64) -> Self;
    /// The value in accumulator type `A`: floats through f64, signed integers through
    /// i64, unsigned through u64. Exact whenever `A` holds the value (always for
    /// `A == Self`), wrapping in integer accumulators.
    #[inline(always)]
    fn cast<A: Element>(self) -> A {
        if A::IS_FLOAT {
            A::from_f64(self.num_f64())
        } else if A::SIGNED {
            A::from_i64(self.num_i64())
        } else {
            A::from_u64(self.num_u64())
        }
    }
    /// 1 or 0 in this type.
    fn from_bool(b: bool) -> Self {
        if b {
            Self::ONE
        } else {
            Self::ZERO
        }
    }
}

macro_rules! int_element {
    ($($t:ty => $d:ident, $signed:expr),*) => {$(
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            const IS_FLOAT: bool = false;
            const SIGNED: bool = $signed;
            #[inline(always)]
            fn num_f64(self) -> f64 { self as f64 }
            #[inline(always)]
            fn num_i64(self) -> i64 { self as i64 }
            #[inline(always)]
            fn num_u64(self) -> u64 { self as u64 }
            #[inline(always)]
            fn from_f64(v: f64) -> Self { v as $t }
            #[inline(always)]
            fn from_i64(v: i64) -> Self { v as $t }
            #[inline(always)]
            fn from_u64(v: u64) -> Self { v as $t }
            const ZERO: Self = 0;
            const ONE: Self = 1;
            const ALL_ONES: Self = !0;
            #[inline(always)]
            fn add(self, o: Self) -> Self { self.wrapping_add(o) }
            #[inline(always)]
            fn mul(self, o: Self) -> Self { self.wrapping_mul(o) }
            #[inline(always)]
            fn bit_and(self, o: Self) -> Self { self & o }
            #[inline(always)]
            fn bit_or(self, o: Self) -> Self { self | o }
            #[inline(always)]
            fn bit_xor(self, o: Self) -> Self { self ^ o }
            #[inline(always)]
            fn is_nan(self) -> bool { false }
            #[inline(always)]
            fn is_nonzero(self) -> bool { self != 0 }
        }
    )*};
}

int_element!(
    i8 => I8, true, i16 => I16, true, i32 => I32, true, i64 => I64, true,
    u8 => U8, false, u16 => U16, false, u32 => U32, false, u64 => U64, false
);

macro_rules! float_element {
    ($($t:ident => $d:ident),*) => {$(
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            const IS_FLOAT: bool = true;
            const SIGNED: bool = true;
            #[inline(always)]
            fn num_f64(self) -> f64 { self as f64 }
            #[inline(always)]
            fn num_i64(self) -> i64 { self as i64 }
            #[inline(always)]
            fn num_u64(self) -> u64 { self as u64 }
            #[inline(always)]
            fn from_f64(v: f64) -> Self { v as $t }
            #[inline(always)]
            fn from_i64(v: i64) -> Self { v as $t }
            #[inline(always)]
            fn from_u64(v: u64) -> Self { v as $t }
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const ALL_ONES: Self = $t::NAN;
            #[inline(always)]
            fn add(self, o: Self) -> Self { self + o }
            #[inline(always)]
            fn mul(self, o: Self) -> Self { self * o }
            #[inline(always)]
            fn bit_and(self, o: Self) -> Self { $t::from_bits(self.to_bits() & o.to_bits()) }
            #[inline(always)]
            fn bit_or(self, o: Self) -> Self { $t::from_bits(self.to_bits() | o.to_bits()) }
            #[inline(always)]
            fn bit_xor(self, o: Self) -> Self { $t::from_bits(self.to_bits() ^ o.to_bits()) }
            #[inline(always)]
            fn is_nan(self) -> bool { self != self }
            #[inline(always)]
            fn is_nonzero(self) -> bool { self != 0.0 }
            fn as_floats(x: &[Self]) -> Option<Floats<'_>> {
                Some(Floats::$d(x))
            }
        }
    )*};
}

float_element!(f32 => F32, f64 => F64);
