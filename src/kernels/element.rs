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
    ($($t:ty => $d:ident),*) => {$(
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            const IS_FLOAT: bool = false;
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

int_element!(i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8, u16 => U16, u32 => U32, u64 => U64);

macro_rules! float_element {
    ($($t:ident => $d:ident),*) => {$(
        impl Element for $t {
            const DTYPE: DType = DType::$d;
            const IS_FLOAT: bool = true;
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
