//! The C kernels of `c_examples/omp_kernels.h`: the gcc/libgomp build and the
//! parfor side linked into this binary, the clang/libomp build loaded from its shared
//! object, the clang build of parfor's compiler-dependent loops, and the oneTBB build
//! where it was compiled.

use std::ffi::{c_int, c_void, CStr, CString};

/// `cmp_reduce_fn`: reduce `n` elements at `a` (and `b`) into `*out`; 0 or a status.
pub type ReduceFn = unsafe extern "C" fn(*const c_void, *const c_void, usize, *mut c_void) -> c_int;
/// `cmp_forkjoin_fn`: a loop of 2 iterations writing who ran them.
pub type ForkJoinFn = unsafe extern "C" fn(*mut c_int) -> c_int;
/// `cmp_loop_fn`: the imbalanced loop writing `n` doubles.
pub type LoopFn = unsafe extern "C" fn(*mut f64, usize) -> c_int;

/// A test of compare/c/epcc.c: `reps` repetitions with delays of `len` steps for a
/// team of `team`; writes the count of delays (or increments) done; 0 or a status.
pub type EpccFn = unsafe extern "C" fn(libc::c_ulong, c_int, c_int, *mut libc::c_long) -> c_int;

/// The EPCC syncbench tests of one build of compare/c/epcc.c (see `epcc`).
#[derive(Clone, Copy)]
pub struct EpccKernels {
    /// The delay length (steps) whose mean time reaches the given seconds.
    pub delay_length: unsafe extern "C" fn(f64) -> c_int,
    pub refer: EpccFn,
    pub referred: EpccFn,
    pub omp_pfor: EpccFn,
    pub omp_red: EpccFn,
    pub omp_red_for: EpccFn,
}

/// The parfor side of compare/c/epcc.c (gcc build).
#[derive(Clone, Copy)]
pub struct ParforEpcc {
    pub pfor: EpccFn,
    pub red: EpccFn,
}

/// One build of omp_kernels.c: the same loops with one compiler and OpenMP runtime.
#[derive(Clone, Copy)]
pub struct OmpKernels {
    pub sum_f64_serial: ReduceFn,
    pub sum_f64_simd: ReduceFn,
    pub sum_f64_hand: ReduceFn,
    pub sum_f64_plain: ReduceFn,
    pub read_or_u64: ReduceFn,
    pub dot_f64_simd: ReduceFn,
    pub min_f32_simd: ReduceFn,
    pub max_f32_simd: ReduceFn,
    pub min_f64_simd: ReduceFn,
    pub max_f64_simd: ReduceFn,
    pub sum_i32_simd: ReduceFn,
    pub sum_i64_simd: ReduceFn,
    pub sumsq_f64_plain: ReduceFn,
    pub imbalanced_dynamic: LoopFn,
    pub imbalanced_guided: LoopFn,
    pub forkjoin2: ForkJoinFn,
    pub max_threads: unsafe extern "C" fn() -> c_int,
    /// compare/c/epcc.c from the same compiler, with this runtime.
    pub epcc: EpccKernels,
    /// Whether this runtime's idle workers keep spinning for long after a region:
    /// LLVM libomp for its KMP_BLOCKTIME, 200 ms by default (measured here: 204 ms
    /// of CPU after the last region; neither omp_pause_soft nor kmp_set_blocktime(0)
    /// before a last empty region shortens it, and omp_pause_hard makes libomp 14
    /// slow afterwards and crash when a second thread uses it). See measure::run_row.
    pub lingers: bool,
}

/// The parfor side, compiled from omp_compare.c with the same compiler and flags as
/// the gcc kernels.
#[derive(Clone, Copy)]
pub struct ParforKernels {
    pub sum_f64: ReduceFn,
    pub sum_exact_f64: ReduceFn,
    pub dot_f64: ReduceFn,
    pub min_f32: ReduceFn,
    pub max_f32: ReduceFn,
    pub min_f64: ReduceFn,
    pub max_f64: ReduceFn,
    pub sum_i32: ReduceFn,
    pub sum_i64: ReduceFn,
    pub sumsq_f64_reduce_with: ReduceFn,
    pub imbalanced_dynamic: LoopFn,
    pub imbalanced_guided: LoopFn,
    pub forkjoin2: ForkJoinFn,
    pub epcc: ParforEpcc,
}

/// The parfor loops of omp_compare.c whose C body the compiler may vectorise,
/// compiled by clang with the flags of the clang OpenMP kernels: the parfor side of
/// the rows where parfor is held against clang/libomp on the same body.
#[derive(Clone, Copy)]
pub struct ParforClangKernels {
    pub sumsq_f64_reduce_with: ReduceFn,
    pub imbalanced_dynamic: LoopFn,
    pub imbalanced_guided: LoopFn,
}

/// The oneTBB kernels.
#[derive(Clone, Copy)]
pub struct TbbKernels {
    pub sum_f64: ReduceFn,
    pub forkjoin2: ForkJoinFn,
    pub max_concurrency: unsafe extern "C" fn() -> c_int,
}

mod gcc {
    use super::*;
    extern "C" {
        pub fn ompk_sum_f64_serial(
            a: *const c_void,
            b: *const c_void,
            n: usize,
            o: *mut c_void,
        ) -> c_int;
        pub fn ompk_sum_f64_simd(
            a: *const c_void,
            b: *const c_void,
            n: usize,
            o: *mut c_void,
        ) -> c_int;
        pub fn ompk_sum_f64_hand(
            a: *const c_void,
            b: *const c_void,
            n: usize,
            o: *mut c_void,
        ) -> c_int;
        pub fn ompk_sum_f64_plain(
            a: *const c_void,
            b: *const c_void,
            n: usize,
            o: *mut c_void,
        ) -> c_int;
        pub fn ompk_read_or_u64(
            a: *const c_void,
            b: *const c_void,
            n: usize,
            o: *mut c_void,
        ) -> c_int;
        pub fn ompk_dot_f64_simd(
            a: *const c_void,
            b: *const c_void,
            n: usize,
            o: *mut c_void,
        ) -> c_int;
        pub fn ompk_min_f32_simd(
            a: *const c_void,
            b: *const c_void,
            n: usize,
            o: *mut c_void,
        ) -> c_int;
        pub fn ompk_max_f32_simd(
            a: *const c_void,
            b: *const c_void,
            n: usize,
            o: *mut c_void,
        ) -> c_int;
        pub fn ompk_min_f64_simd(
            a: *const c_void,
            b: *const c_void,
            n: usize,
            o: *mut c_void,
        ) -> c_int;
        pub fn ompk_max_f64_simd(
            a: *const c_void,
            b: *const c_void,
            n: usize,
            o: *mut c_void,
        ) -> c_int;
        pub fn ompk_sum_i32_simd(
            a: *const c_void,
            b: *const c_void,
            n: usize,
            o: *mut c_void,
        ) -> c_int;
        pub fn ompk_sum_i64_simd(
            a: *const c_void,
            b: *const c_void,
            n: usize,
            o: *mut c_void,
        ) -> c_int;
        pub fn ompk_sumsq_f64_plain(
            a: *const c_void,
            b: *const c_void,
            n: usize,
            o: *mut c_void,
        ) -> c_int;
        pub fn ompk_imbalanced_dynamic(out: *mut f64, n: usize) -> c_int;
        pub fn ompk_imbalanced_guided(out: *mut f64, n: usize) -> c_int;
        pub fn ompk_forkjoin2(who: *mut c_int) -> c_int;
        pub fn ompk_max_threads() -> c_int;
        pub fn epcc_delay_length(seconds: f64) -> c_int;
        pub fn epcc_refer(r: libc::c_ulong, l: c_int, t: c_int, c: *mut libc::c_long) -> c_int;
        pub fn epcc_referred(r: libc::c_ulong, l: c_int, t: c_int, c: *mut libc::c_long) -> c_int;
        pub fn epcc_omp_pfor(r: libc::c_ulong, l: c_int, t: c_int, c: *mut libc::c_long) -> c_int;
        pub fn epcc_omp_red(r: libc::c_ulong, l: c_int, t: c_int, c: *mut libc::c_long) -> c_int;
        pub fn epcc_omp_red_for(
            r: libc::c_ulong,
            l: c_int,
            t: c_int,
            c: *mut libc::c_long,
        ) -> c_int;
        pub fn epcc_parfor_pfor(
            r: libc::c_ulong,
            l: c_int,
            t: c_int,
            c: *mut libc::c_long,
        ) -> c_int;
        pub fn epcc_parfor_red(r: libc::c_ulong, l: c_int, t: c_int, c: *mut libc::c_long)
            -> c_int;

        pub fn pfk_sum_f64(a: *const c_void, b: *const c_void, n: usize, o: *mut c_void) -> c_int;
        pub fn pfk_sum_exact_f64(
            a: *const c_void,
            b: *const c_void,
            n: usize,
            o: *mut c_void,
        ) -> c_int;
        pub fn pfk_dot_f64(a: *const c_void, b: *const c_void, n: usize, o: *mut c_void) -> c_int;
        pub fn pfk_min_f32(a: *const c_void, b: *const c_void, n: usize, o: *mut c_void) -> c_int;
        pub fn pfk_max_f32(a: *const c_void, b: *const c_void, n: usize, o: *mut c_void) -> c_int;
        pub fn pfk_min_f64(a: *const c_void, b: *const c_void, n: usize, o: *mut c_void) -> c_int;
        pub fn pfk_max_f64(a: *const c_void, b: *const c_void, n: usize, o: *mut c_void) -> c_int;
        pub fn pfk_sum_i32(a: *const c_void, b: *const c_void, n: usize, o: *mut c_void) -> c_int;
        pub fn pfk_sum_i64(a: *const c_void, b: *const c_void, n: usize, o: *mut c_void) -> c_int;
        pub fn pfk_sumsq_f64_reduce_with(
            a: *const c_void,
            b: *const c_void,
            n: usize,
            o: *mut c_void,
        ) -> c_int;
        pub fn pfk_imbalanced_dynamic(out: *mut f64, n: usize) -> c_int;
        pub fn pfk_imbalanced_guided(out: *mut f64, n: usize) -> c_int;
        pub fn pfk_forkjoin2(who: *mut c_int) -> c_int;
    }
}

#[cfg(parfor_compare_clang_loops)]
mod parfor_clang {
    use super::*;
    extern "C" {
        pub fn pfk_clang_sumsq_f64_reduce_with(
            a: *const c_void,
            b: *const c_void,
            n: usize,
            o: *mut c_void,
        ) -> c_int;
        pub fn pfk_clang_imbalanced_dynamic(out: *mut f64, n: usize) -> c_int;
        pub fn pfk_clang_imbalanced_guided(out: *mut f64, n: usize) -> c_int;
    }
}

#[cfg(parfor_compare_tbb)]
mod tbb {
    use super::*;
    extern "C" {
        pub fn tbbk_sum_f64(a: *const c_void, b: *const c_void, n: usize, o: *mut c_void) -> c_int;
        pub fn tbbk_forkjoin2(who: *mut c_int) -> c_int;
        pub fn tbbk_max_concurrency() -> c_int;
    }
}

/// The gcc/libgomp build, linked into this binary.
pub fn gcc() -> OmpKernels {
    OmpKernels {
        sum_f64_serial: gcc::ompk_sum_f64_serial,
        sum_f64_simd: gcc::ompk_sum_f64_simd,
        sum_f64_hand: gcc::ompk_sum_f64_hand,
        sum_f64_plain: gcc::ompk_sum_f64_plain,
        read_or_u64: gcc::ompk_read_or_u64,
        dot_f64_simd: gcc::ompk_dot_f64_simd,
        min_f32_simd: gcc::ompk_min_f32_simd,
        max_f32_simd: gcc::ompk_max_f32_simd,
        min_f64_simd: gcc::ompk_min_f64_simd,
        max_f64_simd: gcc::ompk_max_f64_simd,
        sum_i32_simd: gcc::ompk_sum_i32_simd,
        sum_i64_simd: gcc::ompk_sum_i64_simd,
        sumsq_f64_plain: gcc::ompk_sumsq_f64_plain,
        imbalanced_dynamic: gcc::ompk_imbalanced_dynamic,
        imbalanced_guided: gcc::ompk_imbalanced_guided,
        forkjoin2: gcc::ompk_forkjoin2,
        max_threads: gcc::ompk_max_threads,
        epcc: EpccKernels {
            delay_length: gcc::epcc_delay_length,
            refer: gcc::epcc_refer,
            referred: gcc::epcc_referred,
            omp_pfor: gcc::epcc_omp_pfor,
            omp_red: gcc::epcc_omp_red,
            omp_red_for: gcc::epcc_omp_red_for,
        },
        // libgomp's workers park within a millisecond of a region's end (measured).
        lingers: false,
    }
}

/// The parfor side of omp_compare.c.
pub fn parfor() -> ParforKernels {
    ParforKernels {
        sum_f64: gcc::pfk_sum_f64,
        sum_exact_f64: gcc::pfk_sum_exact_f64,
        dot_f64: gcc::pfk_dot_f64,
        min_f32: gcc::pfk_min_f32,
        max_f32: gcc::pfk_max_f32,
        min_f64: gcc::pfk_min_f64,
        max_f64: gcc::pfk_max_f64,
        sum_i32: gcc::pfk_sum_i32,
        sum_i64: gcc::pfk_sum_i64,
        sumsq_f64_reduce_with: gcc::pfk_sumsq_f64_reduce_with,
        imbalanced_dynamic: gcc::pfk_imbalanced_dynamic,
        imbalanced_guided: gcc::pfk_imbalanced_guided,
        forkjoin2: gcc::pfk_forkjoin2,
        epcc: ParforEpcc {
            pfor: gcc::epcc_parfor_pfor,
            red: gcc::epcc_parfor_red,
        },
    }
}

/// The clang build of parfor's compiler-dependent loops, linked into this binary
/// (its `parfor_*` calls go to the same parfor as the gcc side's), or why there is
/// none.
pub fn parfor_clang() -> Result<ParforClangKernels, &'static str> {
    #[cfg(parfor_compare_clang_loops)]
    {
        Ok(ParforClangKernels {
            sumsq_f64_reduce_with: parfor_clang::pfk_clang_sumsq_f64_reduce_with,
            imbalanced_dynamic: parfor_clang::pfk_clang_imbalanced_dynamic,
            imbalanced_guided: parfor_clang::pfk_clang_imbalanced_guided,
        })
    }
    #[cfg(not(parfor_compare_clang_loops))]
    {
        Err(env!("PARFOR_COMPARE_PARFOR_CLANG_NOTE"))
    }
}

/// The oneTBB build, or why there is none.
pub fn tbb() -> Result<TbbKernels, &'static str> {
    #[cfg(parfor_compare_tbb)]
    {
        Ok(TbbKernels {
            sum_f64: tbb::tbbk_sum_f64,
            forkjoin2: tbb::tbbk_forkjoin2,
            max_concurrency: tbb::tbbk_max_concurrency,
        })
    }
    #[cfg(not(parfor_compare_tbb))]
    {
        Err("oneTBB was not found at build time (install libtbb-dev and rebuild)")
    }
}

/// The clang/libomp build, loaded from the shared object compare/build.rs made, or
/// why it is not there.
///
/// RTLD_LOCAL keeps libomp's symbols (it also defines `omp_*` and libgomp's `GOMP_*`)
/// out of the global scope, where they would capture the gcc kernels' calls; and
/// RTLD_DEEPBIND makes the object's own `omp_*` calls bind to libomp before the
/// libgomp already in the process. The handle is never closed: the kernels and
/// libomp's threads live until the process exits.
pub fn clang() -> Result<OmpKernels, String> {
    let path = env!("PARFOR_COMPARE_CLANG_KERNELS");
    if path.is_empty() {
        return Err(env!("PARFOR_COMPARE_CLANG_NOTE").to_string());
    }
    let c_path = CString::new(path).map_err(|e| e.to_string())?;
    // SAFETY: c_path is a NUL-terminated path; dlopen has no other precondition.
    let handle = unsafe {
        libc::dlopen(
            c_path.as_ptr(),
            libc::RTLD_NOW | libc::RTLD_LOCAL | libc::RTLD_DEEPBIND,
        )
    };
    if handle.is_null() {
        return Err(format!("cannot load {path}: {}", dl_error()));
    }
    let sym = |name: &str| -> Result<*mut c_void, String> {
        let c_name = CString::new(name).expect("symbol names have no NUL");
        // SAFETY: handle is a live dlopen handle, c_name NUL-terminated.
        let p = unsafe { libc::dlsym(handle, c_name.as_ptr()) };
        if p.is_null() {
            Err(format!("{path} lacks {name}: {}", dl_error()))
        } else {
            Ok(p)
        }
    };
    // SAFETY (every transmute below): each symbol is defined in omp_kernels.c with
    // exactly the signature of the field it fills, as declared in omp_kernels.h.
    unsafe {
        let reduce = |n: &str| sym(n).map(|p| std::mem::transmute::<*mut c_void, ReduceFn>(p));
        let epcc = |n: &str| sym(n).map(|p| std::mem::transmute::<*mut c_void, EpccFn>(p));
        Ok(OmpKernels {
            sum_f64_serial: reduce("ompk_sum_f64_serial")?,
            sum_f64_simd: reduce("ompk_sum_f64_simd")?,
            sum_f64_hand: reduce("ompk_sum_f64_hand")?,
            sum_f64_plain: reduce("ompk_sum_f64_plain")?,
            read_or_u64: reduce("ompk_read_or_u64")?,
            dot_f64_simd: reduce("ompk_dot_f64_simd")?,
            min_f32_simd: reduce("ompk_min_f32_simd")?,
            max_f32_simd: reduce("ompk_max_f32_simd")?,
            min_f64_simd: reduce("ompk_min_f64_simd")?,
            max_f64_simd: reduce("ompk_max_f64_simd")?,
            sum_i32_simd: reduce("ompk_sum_i32_simd")?,
            sum_i64_simd: reduce("ompk_sum_i64_simd")?,
            sumsq_f64_plain: reduce("ompk_sumsq_f64_plain")?,
            imbalanced_dynamic: std::mem::transmute::<*mut c_void, LoopFn>(sym(
                "ompk_imbalanced_dynamic",
            )?),
            imbalanced_guided: std::mem::transmute::<*mut c_void, LoopFn>(sym(
                "ompk_imbalanced_guided",
            )?),
            forkjoin2: std::mem::transmute::<*mut c_void, ForkJoinFn>(sym("ompk_forkjoin2")?),
            max_threads: std::mem::transmute::<*mut c_void, unsafe extern "C" fn() -> c_int>(sym(
                "ompk_max_threads",
            )?),
            epcc: EpccKernels {
                delay_length: std::mem::transmute::<*mut c_void, unsafe extern "C" fn(f64) -> c_int>(
                    sym("epcc_delay_length")?,
                ),
                refer: epcc("epcc_refer")?,
                referred: epcc("epcc_referred")?,
                omp_pfor: epcc("epcc_omp_pfor")?,
                omp_red: epcc("epcc_omp_red")?,
                omp_red_for: epcc("epcc_omp_red_for")?,
            },
            lingers: true,
        })
    }
}

fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the next
    // dl* call on this thread; it is copied at once.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown dlopen error".to_string()
    } else {
        // SAFETY: non-NULL, NUL-terminated (above).
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}
