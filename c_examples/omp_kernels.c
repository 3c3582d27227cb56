/* omp_kernels.c: the OpenMP (and serial) side of the comparison, written as an
 * OpenMP user writes these loops. No parfor symbol appears here, so that compare/
 * can build this file with gcc (libgomp) and, separately, with clang (LLVM libomp).
 * See omp_kernels.h for what each kernel computes.
 *
 * Build flags: -O3 -march=native -fopenmp (or -fopenmp=libomp), C99. Without
 * -ffast-math a compiler may not reorder a floating-point sum, so the plain
 * `parallel for reduction` loops stay scalar: that is the point of the "plain" rows. */
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "omp_kernels.h"

/* Partial sums kept by the serial kernel: 64 doubles are eight 512-bit registers
 * (sixteen 256-bit ones), enough independent add chains to cover the 4-cycle add
 * latency at two loads per cycle. gcc and clang both vectorise the inner loop over
 * the array, which is why it is written this way rather than with intrinsics. */
#define LANES 64

static double sum_lanes(const double *x, size_t n) {
    double acc[LANES];
    double s = 0.0;
    size_t i = 0, j;
    for (j = 0; j < LANES; j++) {
        acc[j] = 0.0;
    }
    for (; i + LANES <= n; i += LANES) {
        for (j = 0; j < LANES; j++) {
            acc[j] += x[i + j];
        }
    }
    for (; i < n; i++) {
        acc[i % LANES] += x[i];
    }
    /* Pairwise, so the combine adds no long chain of its own. */
    for (j = LANES / 2; j > 0; j /= 2) {
        size_t k;
        for (k = 0; k < j; k++) {
            acc[k] += acc[k + j];
        }
    }
    s = acc[0];
    return s;
}

int ompk_sum_f64_serial(const void *a, const void *b, size_t n, void *out) {
    (void)b;
    *(double *)out = sum_lanes(a, n);
    return 0;
}

int ompk_sum_f64_simd(const void *a, const void *b, size_t n, void *out) {
    const double *x = a;
    double s = 0.0;
    long i, len = (long)n;
    (void)b;
#pragma omp parallel for simd reduction(+ : s) schedule(static)
    for (i = 0; i < len; i++) {
        s += x[i];
    }
    *(double *)out = s;
    return 0;
}

int ompk_sum_f64_hand(const void *a, const void *b, size_t n, void *out) {
    const double *x = a;
    double s = 0.0;
    (void)b;
#pragma omp parallel reduction(+ : s)
    {
        size_t t = (size_t)omp_get_thread_num();
        size_t team = (size_t)omp_get_num_threads();
        /* Contiguous shares rounded to whole cache lines (8 doubles), as a user
         * splitting by hand would. */
        size_t lines = (n + 7) / 8;
        size_t lo = lines * t / team * 8, hi = lines * (t + 1) / team * 8;
        if (hi > n) {
            hi = n;
        }
        if (lo < hi) {
            s += sum_lanes(x + lo, hi - lo);
        }
    }
    *(double *)out = s;
    return 0;
}

int ompk_sum_f64_plain(const void *a, const void *b, size_t n, void *out) {
    const double *x = a;
    double s = 0.0;
    long i, len = (long)n;
    (void)b;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (i = 0; i < len; i++) {
        s += x[i];
    }
    *(double *)out = s;
    return 0;
}

int ompk_read_or_u64(const void *a, const void *b, size_t n, void *out) {
    /* The buffer is read through uint64_t only in this function. */
    const uint64_t *x = a;
    uint64_t r = 0;
    long i, len = (long)n;
    (void)b;
#pragma omp parallel for simd reduction(| : r) schedule(static)
    for (i = 0; i < len; i++) {
        r |= x[i];
    }
    memcpy(out, &r, sizeof r);
    return 0;
}

int ompk_dot_f64_simd(const void *a, const void *b, size_t n, void *out) {
    const double *x = a, *y = b;
    double s = 0.0;
    long i, len = (long)n;
#pragma omp parallel for simd reduction(+ : s) schedule(static)
    for (i = 0; i < len; i++) {
        s += x[i] * y[i];
    }
    *(double *)out = s;
    return 0;
}

/* MIN/MAX start from the first element, so no sentinel value is needed. The inputs
 * hold no NaN (the driver's data), where OpenMP's min/max and parfor's (which
 * propagates NaN) agree exactly. n is at least 1 (the callers' sizes). PRAGMA turns
 * the macro's operator argument into the pragma's text. */
#define PRAGMA(text) _Pragma(#text)
#define MINMAX_KERNEL(name, T, op, cmp)                                                  \
    int name(const void *a, const void *b, size_t n, void *out) {                        \
        const T *x = a;                                                                  \
        T m = x[0];                                                                      \
        long i, len = (long)n;                                                           \
        (void)b;                                                                         \
        PRAGMA(omp parallel for simd reduction(op : m) schedule(static))                \
        for (i = 1; i < len; i++) {                                                      \
            m = x[i] cmp m ? x[i] : m;                                                   \
        }                                                                                \
        *(T *)out = m;                                                                   \
        return 0;                                                                        \
    }

MINMAX_KERNEL(ompk_min_f32_simd, float, min, <)
MINMAX_KERNEL(ompk_max_f32_simd, float, max, >)
MINMAX_KERNEL(ompk_min_f64_simd, double, min, <)
MINMAX_KERNEL(ompk_max_f64_simd, double, max, >)

int ompk_sum_i32_simd(const void *a, const void *b, size_t n, void *out) {
    const int32_t *x = a;
    int32_t s = 0;
    long i, len = (long)n;
    (void)b;
#pragma omp parallel for simd reduction(+ : s) schedule(static)
    for (i = 0; i < len; i++) {
        s += x[i];
    }
    *(int32_t *)out = s;
    return 0;
}

int ompk_sum_i64_simd(const void *a, const void *b, size_t n, void *out) {
    const int64_t *x = a;
    int64_t s = 0;
    long i, len = (long)n;
    (void)b;
#pragma omp parallel for simd reduction(+ : s) schedule(static)
    for (i = 0; i < len; i++) {
        s += x[i];
    }
    *(int64_t *)out = s;
    return 0;
}

int ompk_sumsq_f64_plain(const void *a, const void *b, size_t n, void *out) {
    const double *x = a;
    double s = 0.0;
    long i, len = (long)n;
    (void)b;
#pragma omp parallel for reduction(+ : s) schedule(static)
    for (i = 0; i < len; i++) {
        s += x[i] * x[i];
    }
    *(double *)out = s;
    return 0;
}

int ompk_imbalanced_dynamic(double *out, size_t n) {
    long i, len = (long)n;
#pragma omp parallel for schedule(dynamic)
    for (i = 0; i < len; i++) {
        out[i] = cmp_imbalanced_work((size_t)i);
    }
    return 0;
}

int ompk_imbalanced_guided(double *out, size_t n) {
    long i, len = (long)n;
#pragma omp parallel for schedule(guided)
    for (i = 0; i < len; i++) {
        out[i] = cmp_imbalanced_work((size_t)i);
    }
    return 0;
}

int ompk_forkjoin2(int who[2]) {
    int i;
#pragma omp parallel for schedule(static)
    for (i = 0; i < 2; i++) {
        who[i] = omp_get_thread_num();
    }
    return 0;
}

int ompk_max_threads(void) { return omp_get_max_threads(); }
