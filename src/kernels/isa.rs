//! Which instruction-set level the kernels run: the best the CPU has, or a lower one
//! named by the `PARFOR_ISA` environment variable.
//!
//! `PARFOR_ISA` is `avx512`, `avx2` or `baseline` (ASCII case and surrounding blanks
//! ignored; unset or empty means the CPU's best). It exists so that a machine with
//! AVX-512 can run, measure and test the AVX2 and baseline paths most users run:
//! every level gives the same bits, and the test suite checks that under each level
//! the CPU supports. A level above what the CPU has, or any other value, prints one
//! warning on stderr and runs the CPU's best level: the variable can never make the
//! library execute an instruction the CPU lacks.
//!
//! The variable is read once, at the first kernel call (or [`isa`] call), and the
//! answer is cached in an atomic: no `Once` or lock, so a child forked while another
//! thread is detecting simply detects again, and never waits for a thread that the
//! fork did not copy.

use std::sync::atomic::{AtomicU8, Ordering};

/// A kernel instruction-set level, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// The x86-64 baseline (SSE2), and the portable code on other architectures.
    Baseline,
    /// AVX2 (x86-64-v3).
    Avx2,
    /// AVX-512 F, BW, VL and DQ (x86-64-v4).
    Avx512,
}

impl Isa {
    /// Every level, lowest first.
    pub const ALL: [Isa; 3] = [Isa::Baseline, Isa::Avx2, Isa::Avx512];

    /// The level's name as `PARFOR_ISA` spells it: "baseline", "avx2", "avx512".
    pub fn name(self) -> &'static str {
        match self {
            Isa::Baseline => "baseline",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// The level `s` names (see the module documentation), or None.
    pub fn parse(s: &str) -> Option<Isa> {
        let s = s.trim();
        Isa::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s))
    }

    /// The level's name as a NUL-terminated static string (for the C ABI).
    pub(crate) fn c_name(self) -> &'static std::ffi::CStr {
        match self {
            Isa::Baseline => c"baseline",
            Isa::Avx2 => c"avx2",
            Isa::Avx512 => c"avx512",
        }
    }

    fn code(self) -> u8 {
        self as u8 + 1
    }

    fn from_code(c: u8) -> Option<Isa> {
        Isa::ALL.get(usize::from(c).checked_sub(1)?).copied()
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The best level this CPU has.
pub fn best_isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("avx512dq")
        {
            return Isa::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return Isa::Avx2;
        }
    }
    Isa::Baseline
}

/// Every level this CPU can run, lowest first (always starts with `Baseline`).
pub fn supported_isas() -> Vec<Isa> {
    let best = best_isa();
    Isa::ALL.into_iter().filter(|&l| l <= best).collect()
}

/// The level a `PARFOR_ISA` value selects on a CPU whose best level is `best`, and
/// the warning to print when the value cannot be honoured.
pub(crate) fn choose(value: Option<&str>, best: Isa) -> (Isa, Option<String>) {
    let value = match value {
        None => return (best, None),
        Some(v) if v.trim().is_empty() => return (best, None),
        Some(v) => v,
    };
    match Isa::parse(value) {
        Some(l) if l <= best => (l, None),
        Some(l) => (
            best,
            Some(format!(
                "parfor: PARFOR_ISA={value:?} asks for {l}, which this CPU does not have; \
                 running {best}"
            )),
        ),
        None => (
            best,
            Some(format!(
                "parfor: PARFOR_ISA={value:?} is not one of avx512, avx2, baseline; \
                 running {best}"
            )),
        ),
    }
}

/// 0: not yet chosen; else `Isa::code`. One relaxed load per kernel call (a block is
/// a few hundred cycles of work, so four feature checks each time would show).
static LEVEL: AtomicU8 = AtomicU8::new(0);

/// The level the kernels run: `PARFOR_ISA`'s when the CPU has it, else the CPU's best
/// (see the module documentation).
#[inline]
pub fn isa() -> Isa {
    match Isa::from_code(LEVEL.load(Ordering::Relaxed)) {
        Some(l) => l,
        None => init(),
    }
}

#[cold]
fn init() -> Isa {
    let value = std::env::var_os("PARFOR_ISA");
    let value = value.as_ref().map(|v| v.to_string_lossy());
    let (level, warning) = choose(value.as_deref(), best_isa());
    // Threads racing here compute the same level; only the one whose store lands
    // first prints the warning, so it appears once per process.
    if LEVEL
        .compare_exchange(0, level.code(), Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
    {
        if let Some(w) = warning {
            eprintln!("{w}");
        }
    }
    level
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for l in Isa::ALL {
            assert_eq!(Isa::parse(l.name()), Some(l));
            assert_eq!(l.c_name().to_str().unwrap(), l.name());
        }
        assert_eq!(Isa::parse(" AVX2\n"), Some(Isa::Avx2));
        assert_eq!(Isa::parse("avx-512"), None);
        assert_eq!(Isa::parse(""), None);
    }

    #[test]
    fn never_above_the_cpu() {
        assert_eq!(choose(None, Isa::Avx2), (Isa::Avx2, None));
        assert_eq!(choose(Some(" "), Isa::Avx2), (Isa::Avx2, None));
        assert_eq!(choose(Some("baseline"), Isa::Avx2), (Isa::Baseline, None));
        assert_eq!(choose(Some("avx2"), Isa::Avx512), (Isa::Avx2, None));
        let (l, w) = choose(Some("avx512"), Isa::Avx2);
        assert_eq!(l, Isa::Avx2);
        let w = w.expect("a warning");
        assert!(
            w.contains("does not have") && w.contains("running avx2"),
            "{w}"
        );
        let (l, w) = choose(Some("sse9"), Isa::Baseline);
        assert_eq!(l, Isa::Baseline);
        assert!(w.expect("a warning").contains("not one of"));
    }

    #[test]
    fn the_running_level_is_supported() {
        assert!(supported_isas().contains(&isa()));
        assert_eq!(supported_isas()[0], Isa::Baseline);
        assert_eq!(*supported_isas().last().unwrap(), best_isa());
    }
}
