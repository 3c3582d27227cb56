/* omp_kernels.h: the loops that parfor is compared with, written the way an OpenMP
 * user writes them (omp_kernels.c), and the same loops through parfor
 * (omp_compare.c). Every kernel of one shape has one signature, so that the
 * comparison program, and the Rust driver in compare/, can hold the OpenMP and the
 * parfor version side by side and time them the same way.
 *
 * omp_kernels.c uses no parfor symbol: compare/ builds it twice, with gcc (libgomp)
 * into the driver and with clang (LLVM libomp) into a shared object loaded at run
 * time, since the two OpenMP runtimes cannot be linked into one binary. */
#ifndef OMP_KERNELS_H
#define OMP_KERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A reduction: reduces the n elements at a (and at b, for dot products) into *out,
 * which has the element type. Returns 0, or a parfor_status on failure. */
typedef int (*cmp_reduce_fn)(const void *a, const void *b, size_t n, void *out);

/* A fork-join of a loop of 2 iterations: iteration i stores the index of the thread
 * that ran it in who[i]. Returns 0, or a parfor_status on failure. */
typedef int (*cmp_forkjoin_fn)(int who[2]);

/* A loop whose iteration i costs time proportional to i (cmp_imbalanced_work):
 * out[i] = cmp_imbalanced_work(i) for i < n. Returns 0, or a parfor_status. */
typedef int (*cmp_loop_fn)(double *out, size_t n);

/* The body of the imbalanced loops: a chain of dependent integer multiply-adds (a
 * 64-bit linear congruential step, Knuth's MMIX constants), 1 + i / 1024 steps long,
 * so that the last iterations cost 100 times the first at n = 1e5 and a static
 * split gives one thread three quarters of the work. Integer arithmetic, so every
 * compiler computes the same bits and the two sides are compared exactly. Inline,
 * so that both sides compile the same body. */
static inline double cmp_imbalanced_work(size_t i) {
    unsigned long long u = (unsigned long long)i;
    size_t k, steps = 1 + i / 1024;
    for (k = 0; k < steps; k++) {
        u = u * 6364136223846793005ULL + 1442695040888963407ULL;
    }
    return (double)(u >> 11);
}

/* ---- OpenMP and serial kernels (omp_kernels.c) ---- */

/* double SUM, serial: 64 independent partial sums (eight AVX-512 vectors' worth)
 * that the compiler keeps in registers, so the loop runs at load throughput. */
int ompk_sum_f64_serial(const void *a, const void *b, size_t n, void *out);
/* double SUM, `#pragma omp parallel for simd reduction(+:s)`. */
int ompk_sum_f64_simd(const void *a, const void *b, size_t n, void *out);
/* double SUM, `#pragma omp parallel` with each thread running the serial kernel
 * above on its own contiguous share: OpenMP with hand-vectorised accumulators. */
int ompk_sum_f64_hand(const void *a, const void *b, size_t n, void *out);
/* double SUM, plain `#pragma omp parallel for reduction(+:s)`: one scalar
 * accumulator per thread, so latency bound. */
int ompk_sum_f64_plain(const void *a, const void *b, size_t n, void *out);
/* Read bandwidth: the bitwise OR of the n 64-bit words at a, in parallel. OR has no
 * latency chain worth the name, so this is as fast as memory can be read. */
int ompk_read_or_u64(const void *a, const void *b, size_t n, void *out);
/* double dot product, `parallel for simd reduction(+:s)`. */
int ompk_dot_f64_simd(const void *a, const void *b, size_t n, void *out);
/* MIN and MAX of float and double, `parallel for simd reduction(min|max:m)`. */
int ompk_min_f32_simd(const void *a, const void *b, size_t n, void *out);
int ompk_max_f32_simd(const void *a, const void *b, size_t n, void *out);
int ompk_min_f64_simd(const void *a, const void *b, size_t n, void *out);
int ompk_max_f64_simd(const void *a, const void *b, size_t n, void *out);
/* int32_t and int64_t SUM, `parallel for simd reduction(+:s)`. The caller keeps the
 * sums in range: signed overflow is undefined in C. */
int ompk_sum_i32_simd(const void *a, const void *b, size_t n, void *out);
int ompk_sum_i64_simd(const void *a, const void *b, size_t n, void *out);
/* double sum of squares, plain `parallel for reduction(+:s)`: the loop that
 * parfor_reduce_with runs through a callback, with its body inlined. */
int ompk_sumsq_f64_plain(const void *a, const void *b, size_t n, void *out);
/* The imbalanced loop with schedule(dynamic) and schedule(guided), default chunk. */
int ompk_imbalanced_dynamic(double *out, size_t n);
int ompk_imbalanced_guided(double *out, size_t n);
/* `#pragma omp parallel for` over 2 iterations. */
int ompk_forkjoin2(int who[2]);
/* Team size of a parallel region started here. */
int ompk_max_threads(void);

/* ---- the same through parfor (omp_compare.c) ---- */

int pfk_sum_f64(const void *a, const void *b, size_t n, void *out);
int pfk_sum_exact_f64(const void *a, const void *b, size_t n, void *out);
int pfk_dot_f64(const void *a, const void *b, size_t n, void *out);
int pfk_min_f32(const void *a, const void *b, size_t n, void *out);
int pfk_max_f32(const void *a, const void *b, size_t n, void *out);
int pfk_min_f64(const void *a, const void *b, size_t n, void *out);
int pfk_max_f64(const void *a, const void *b, size_t n, void *out);
int pfk_sum_i32(const void *a, const void *b, size_t n, void *out);
int pfk_sum_i64(const void *a, const void *b, size_t n, void *out);
/* Sum of squares with parfor_reduce_with: the fold is a plain C loop over its range. */
int pfk_sumsq_f64_reduce_with(const void *a, const void *b, size_t n, void *out);
/* The imbalanced loop with parfor_for, PARFOR_SCHEDULE_DYNAMIC / GUIDED, chunk 0. */
int pfk_imbalanced_dynamic(double *out, size_t n);
int pfk_imbalanced_guided(double *out, size_t n);
/* parfor_for over 2 iterations with the default options. */
int pfk_forkjoin2(int who[2]);

/* The three loops above whose C body the compiler vectorises or not, compiled by
 * clang (omp_compare.c with -DPFK_LOOPS_ONLY=clang; compare/ only), to be held
 * against the clang OpenMP loops on the same body. */
int pfk_clang_sumsq_f64_reduce_with(const void *a, const void *b, size_t n, void *out);
int pfk_clang_imbalanced_dynamic(double *out, size_t n);
int pfk_clang_imbalanced_guided(double *out, size_t n);

/* ---- the same with oneTBB (tbb_kernels.cpp), built where its header exists ---- */

/* double SUM, tbb::parallel_reduce with the 64-partial-sum loop of
 * ompk_sum_f64_serial inside each range. */
int tbbk_sum_f64(const void *a, const void *b, size_t n, void *out);
/* tbb::parallel_for over 2 iterations, split into two tasks of one. */
int tbbk_forkjoin2(int who[2]);
/* Threads TBB's default arena may use. */
int tbbk_max_concurrency(void);

#ifdef __cplusplus
}
#endif

#endif /* OMP_KERNELS_H */
