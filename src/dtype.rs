//! The element types parfor reduces over: one table for the whole crate.
//!
//! The C ABI passes a dtype as a plain integer; [`DType::from_raw`] is the only
//! place that maps such an integer to a type.

/// An element type of a buffer. The discriminants are the C enum `parfor_dtype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// `float`
    F32 = 0,
    /// `double`
    F64 = 1,
    /// `int8_t`
    I8 = 2,
    /// `int16_t`
    I16 = 3,
    /// `int32_t`
    I32 = 4,
    /// `int64_t`
    I64 = 5,
    /// `uint8_t`
    U8 = 6,
    /// `uint16_t`
    U16 = 7,
    /// `uint32_t`
    U32 = 8,
    /// `uint64_t`
    U64 = 9,
}

impl DType {
    /// Every dtype, in discriminant order.
    pub const ALL: [DType; 10] = [
        DType::F32,
        DType::F64,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
    ];

    /// Maps a C enum value to a dtype; `None` for a value outside the enum.
    pub fn from_raw(raw: i32) -> Option<DType> {
        usize::try_from(raw)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// Size of one element in bytes (also its alignment on every supported target).
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
        }
    }

    /// Required alignment of a buffer of this dtype in bytes.
    pub fn align(self) -> usize {
        self.size()
    }

    /// True for `F32` and `F64`.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// The C spelling, for messages.
    pub fn c_name(self) -> &'static str {
        match self {
            DType::F32 => "PARFOR_F32",
            DType::F64 => "PARFOR_F64",
            DType::I8 => "PARFOR_I8",
            DType::I16 => "PARFOR_I16",
            DType::I32 => "PARFOR_I32",
            DType::I64 => "PARFOR_I64",
            DType::U8 => "PARFOR_U8",
            DType::U16 => "PARFOR_U16",
            DType::U32 => "PARFOR_U32",
            DType::U64 => "PARFOR_U64",
        }
    }
}

/// Runs `$body` with `$T` bound to the Rust type of the runtime dtype `$dt`.
macro_rules! with_dtype {
    ($dt:expr, $T:ident => $body:expr) => {
        match $dt {
            $crate::dtype::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::dtype::DType::F64 => {
                type $T = f64;
                $body
            }
            $crate::dtype::DType::I8 => {
                type $T = i8;
                $body
            }
            $crate::dtype::DType::I16 => {
                type $T = i16;
                $body
            }
            $crate::dtype::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::dtype::DType::I64 => {
                type $T = i64;
                $body
            }
            $crate::dtype::DType::U8 => {
                type $T = u8;
                $body
            }
            $crate::dtype::DType::U16 => {
                type $T = u16;
                $body
            }
            $crate::dtype::DType::U32 => {
                type $T = u32;
                $body
            }
            $crate::dtype::DType::U64 => {
                type $T = u64;
                $body
            }
        }
    };
}
pub(crate) use with_dtype;

#[cfg(test)]
mod test {
    use super::DType;

    #[test]
    fn raw_round_trip() {
        for (i, d) in DType::ALL.iter().enumerate() {
            assert_eq!(DType::from_raw(i as i32), Some(*d));
            assert_eq!(*d as usize, i);
        }
        assert_eq!(DType::from_raw(-1), None);
        assert_eq!(DType::from_raw(10), None);
        assert_eq!(DType::from_raw(i32::MAX), None);
    }
}
