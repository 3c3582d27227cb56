/* omp_compare: the same loops with `#pragma omp parallel for [simd] reduction(...)`
 * (omp_kernels.c) and with parfor (this file), checked against each other and timed
 * side by side. The timings are medians of rounds that alternate the two sides, so
 * that noise on the machine hits both.
 *
 * Build standalone (after `cargo build --release`):
 *   $ gcc -O3 -march=native -fopenmp -Iinclude c_examples/omp_compare.c \
 *       c_examples/omp_kernels.c -Ltarget/release -lparfor \
 *       -Wl,-rpath,$PWD/target/release -o omp_compare
 * The full comparison (clang/libomp, oneTBB, rayon, every size, CSV and plot) is
 * `cargo run --release -p parfor-compare`, whose driver calls the pfk_* functions
 * below and the ompk_* ones in omp_kernels.c.
 *
 * Built with -DPFK_LOOPS_ONLY=<tag>, only the parfor loops whose speed depends on
 * the compiler of their C body (the sum of squares of reduce_with, the imbalanced
 * loops) are compiled, named pfk_<tag>_... and without OpenMP: compare/ builds them
 * so with clang (tag `clang`), to hold them against the clang OpenMP loops, since a
 * runtime is only compared with another on the same body from the same compiler.
 *
 * Exit status: 0 when every pair agrees, 1 otherwise. */
#define _POSIX_C_SOURCE 199309L

#include <math.h>
#ifndef PFK_LOOPS_ONLY
#include <omp.h>
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "omp_kernels.h"
#include "parfor.h"

/* ---- the parfor side, with the signatures of omp_kernels.h ---- */

/* PFK_LOOP_NAME(f): the name of the compiler-dependent loop pfk_f, or pfk_<tag>_f in
 * the -DPFK_LOOPS_ONLY=<tag> build (two levels so that the tag is expanded first). */
#ifdef PFK_LOOPS_ONLY
#define PFK_PASTE(tag, f) pfk_##tag##_##f
#define PFK_EXPAND(tag, f) PFK_PASTE(tag, f)
#define PFK_LOOP_NAME(f) PFK_EXPAND(PFK_LOOPS_ONLY, f)
#else
#define PFK_LOOP_NAME(f) pfk_##f
#endif

#ifndef PFK_LOOPS_ONLY

int pfk_sum_f64(const void *a, const void *b, size_t n, void *out) {
    (void)b;
    return (int)parfor_reduce(a, n, PARFOR_F64, PARFOR_SUM, NULL, out);
}

int pfk_sum_exact_f64(const void *a, const void *b, size_t n, void *out) {
    (void)b;
    return (int)parfor_reduce(a, n, PARFOR_F64, PARFOR_SUM_EXACT, NULL, out);
}

int pfk_dot_f64(const void *a, const void *b, size_t n, void *out) {
    return (int)parfor_dot(a, b, n, PARFOR_F64, NULL, out);
}

int pfk_min_f32(const void *a, const void *b, size_t n, void *out) {
    (void)b;
    return (int)parfor_reduce(a, n, PARFOR_F32, PARFOR_MIN, NULL, out);
}

int pfk_max_f32(const void *a, const void *b, size_t n, void *out) {
    (void)b;
    return (int)parfor_reduce(a, n, PARFOR_F32, PARFOR_MAX, NULL, out);
}

int pfk_min_f64(const void *a, const void *b, size_t n, void *out) {
    (void)b;
    return (int)parfor_reduce(a, n, PARFOR_F64, PARFOR_MIN, NULL, out);
}

int pfk_max_f64(const void *a, const void *b, size_t n, void *out) {
    (void)b;
    return (int)parfor_reduce(a, n, PARFOR_F64, PARFOR_MAX, NULL, out);
}

int pfk_sum_i32(const void *a, const void *b, size_t n, void *out) {
    (void)b;
    return (int)parfor_reduce(a, n, PARFOR_I32, PARFOR_SUM, NULL, out);
}

int pfk_sum_i64(const void *a, const void *b, size_t n, void *out) {
    (void)b;
    return (int)parfor_reduce(a, n, PARFOR_I64, PARFOR_SUM, NULL, out);
}

#endif /* !PFK_LOOPS_ONLY */

/* The fold of the sum of squares: the loop body of ompk_sumsq_f64_plain, run by
 * parfor on each block of the fixed partition. */
static int sumsq_fold(void *ctx, size_t begin, size_t end, void *acc) {
    const double *x = ctx;
    double s = *(double *)acc;
    size_t i;
    for (i = begin; i < end; i++) {
        s += x[i] * x[i];
    }
    *(double *)acc = s;
    return 0;
}

static void sumsq_combine(void *ctx, void *acc, const void *other) {
    (void)ctx;
    *(double *)acc += *(const double *)other;
}

int PFK_LOOP_NAME(sumsq_f64_reduce_with)(const void *a, const void *b, size_t n, void *out) {
    const double zero = 0.0;
    (void)b;
    return (int)parfor_reduce_with(0, n, &zero, sizeof zero, NULL, sumsq_fold, sumsq_combine,
                                   (void *)a, out);
}

static int imbalanced_body(void *ctx, size_t begin, size_t end) {
    double *out = ctx;
    size_t i;
    for (i = begin; i < end; i++) {
        out[i] = cmp_imbalanced_work(i);
    }
    return 0;
}

static int imbalanced(double *out, size_t n, parfor_schedule schedule) {
    parfor_options opts;
    parfor_options_init(&opts);
    opts.schedule = schedule;
    return (int)parfor_for(0, n, &opts, imbalanced_body, out);
}

int PFK_LOOP_NAME(imbalanced_dynamic)(double *out, size_t n) {
    return imbalanced(out, n, PARFOR_SCHEDULE_DYNAMIC);
}

int PFK_LOOP_NAME(imbalanced_guided)(double *out, size_t n) {
    return imbalanced(out, n, PARFOR_SCHEDULE_GUIDED);
}

#ifndef PFK_LOOPS_ONLY

static int forkjoin_body(void *ctx, size_t begin, size_t end) {
    int *who = ctx;
    size_t i;
    for (i = begin; i < end; i++) {
        who[i] = (int)parfor_thread_index();
    }
    return 0;
}

int pfk_forkjoin2(int who[2]) { return (int)parfor_for(0, 2, NULL, forkjoin_body, who); }

/* ---- the standalone comparison ---- */

/* Rounds per measurement; each round times one batch of each side, alternating. */
#define ROUNDS 15
/* Largest array: 1e7 doubles (80 MB), past the last-level cache of most machines. */
#define MAX_N 10000000u

static double now(void) { return omp_get_wtime(); }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int k) {
    qsort(v, (size_t)k, sizeof *v, cmp_double);
    return k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
}

/* Calls per batch so that a batch lasts about 2 ms (at least one call): long enough
 * for the clock, short enough that 15 alternating rounds stay well under a second. */
static long calls_per_batch(double one_call) {
    double k = 2e-3 / (one_call > 1e-9 ? one_call : 1e-9);
    return k < 1.0 ? 1 : (long)k;
}

static int failures;

static void report(const char *what, double t_omp, double t_pf) {
    printf("%-34s %12.3f us %12.3f us %8.2f\n", what, t_omp * 1e6, t_pf * 1e6, t_pf / t_omp);
}

/* Median seconds per call of each side of a reduction, alternating batches. */
static void time_reduce(cmp_reduce_fn omp, cmp_reduce_fn pf, const void *a, const void *b, size_t n,
                        void *out, double *t_omp, double *t_pf) {
    double s_omp[ROUNDS], s_pf[ROUNDS], t0;
    long k, reps;
    int r;
    t0 = now();
    omp(a, b, n, out);
    pf(a, b, n, out);
    reps = calls_per_batch(now() - t0);
    for (r = 0; r < ROUNDS; r++) {
        t0 = now();
        for (k = 0; k < reps; k++) {
            omp(a, b, n, out);
        }
        s_omp[r] = (now() - t0) / (double)reps;
        t0 = now();
        for (k = 0; k < reps; k++) {
            pf(a, b, n, out);
        }
        s_pf[r] = (now() - t0) / (double)reps;
    }
    *t_omp = median(s_omp, ROUNDS);
    *t_pf = median(s_pf, ROUNDS);
}

/* Floating-point results may differ in the last bits, since the two sides add in
 * different orders. With every input in [0.5, 1.5), 1e-10 relative is hundreds of
 * times the rounding error of either order at these sizes, and ten times smaller
 * than the effect of losing or doubling one element of 1e7. */
static void check_close(const char *what, double omp, double pf) {
    if (!(fabs(omp - pf) <= 1e-10 * fabs(omp))) {
        printf("MISMATCH %s: OpenMP %.17g, parfor %.17g\n", what, omp, pf);
        failures++;
    }
}

static void check_status(const char *what, int status) {
    if (status != 0) {
        printf("FAILED %s: %s (%s)\n", what, parfor_status_message((parfor_status)status),
               parfor_last_error());
        failures++;
    }
}

static void compare_sums(const double *x) {
    static const size_t sizes[] = {1000, 10000, 100000, 1000000, MAX_N};
    size_t i;
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char what[64];
        double r_omp, r_pf, t_omp, t_pf;
        size_t n = sizes[i];
        sprintf(what, "SUM f64, n = %lu", (unsigned long)n);
        ompk_sum_f64_simd(x, NULL, n, &r_omp);
        check_status(what, pfk_sum_f64(x, NULL, n, &r_pf));
        check_close(what, r_omp, r_pf);
        time_reduce(ompk_sum_f64_simd, pfk_sum_f64, x, NULL, n, &r_pf, &t_omp, &t_pf);
        report(what, t_omp, t_pf);
    }
}

static void compare_typed(const double *x, const double *y, const float *xf, const int32_t *xi,
                          const int64_t *xl) {
    enum { N = 1000000 };
    double d_omp, d_pf, t_omp, t_pf;
    float f_omp, f_pf;
    int32_t i_omp, i_pf;
    int64_t l_omp, l_pf;

    ompk_dot_f64_simd(x, y, N, &d_omp);
    check_status("dot f64", pfk_dot_f64(x, y, N, &d_pf));
    check_close("dot f64", d_omp, d_pf);
    time_reduce(ompk_dot_f64_simd, pfk_dot_f64, x, y, N, &d_pf, &t_omp, &t_pf);
    report("dot f64, n = 1000000", t_omp, t_pf);

    /* MIN and MAX are exact operations: the results must be identical. */
    ompk_min_f32_simd(xf, NULL, N, &f_omp);
    check_status("MIN f32", pfk_min_f32(xf, NULL, N, &f_pf));
    if (f_omp != f_pf) {
        printf("MISMATCH MIN f32: OpenMP %.9g, parfor %.9g\n", f_omp, f_pf);
        failures++;
    }
    time_reduce(ompk_min_f32_simd, pfk_min_f32, xf, NULL, N, &f_pf, &t_omp, &t_pf);
    report("MIN f32, n = 1000000", t_omp, t_pf);

    ompk_max_f64_simd(x, NULL, N, &d_omp);
    check_status("MAX f64", pfk_max_f64(x, NULL, N, &d_pf));
    if (d_omp != d_pf) {
        printf("MISMATCH MAX f64: OpenMP %.17g, parfor %.17g\n", d_omp, d_pf);
        failures++;
    }
    time_reduce(ompk_max_f64_simd, pfk_max_f64, x, NULL, N, &d_pf, &t_omp, &t_pf);
    report("MAX f64, n = 1000000", t_omp, t_pf);

    /* Integer sums are exact. */
    ompk_sum_i32_simd(xi, NULL, N, &i_omp);
    check_status("SUM i32", pfk_sum_i32(xi, NULL, N, &i_pf));
    if (i_omp != i_pf) {
        printf("MISMATCH SUM i32: OpenMP %ld, parfor %ld\n", (long)i_omp, (long)i_pf);
        failures++;
    }
    time_reduce(ompk_sum_i32_simd, pfk_sum_i32, xi, NULL, N, &i_pf, &t_omp, &t_pf);
    report("SUM i32, n = 1000000", t_omp, t_pf);

    ompk_sum_i64_simd(xl, NULL, N, &l_omp);
    check_status("SUM i64", pfk_sum_i64(xl, NULL, N, &l_pf));
    if (l_omp != l_pf) {
        printf("MISMATCH SUM i64: OpenMP %lld, parfor %lld\n", (long long)l_omp,
               (long long)l_pf);
        failures++;
    }
    time_reduce(ompk_sum_i64_simd, pfk_sum_i64, xl, NULL, N, &l_pf, &t_omp, &t_pf);
    report("SUM i64, n = 1000000", t_omp, t_pf);

    ompk_sumsq_f64_plain(x, NULL, N, &d_omp);
    check_status("sum of squares", pfk_sumsq_f64_reduce_with(x, NULL, N, &d_pf));
    check_close("sum of squares", d_omp, d_pf);
    time_reduce(ompk_sumsq_f64_plain, pfk_sumsq_f64_reduce_with, x, NULL, N, &d_pf, &t_omp, &t_pf);
    report("sum of squares (reduce_with), 1e6", t_omp, t_pf);
}

/* The imbalanced loops write every element; both sides must write the same bits. */
static void compare_loop(const char *what, cmp_loop_fn omp, cmp_loop_fn pf, size_t n) {
    double s_omp[ROUNDS], s_pf[ROUNDS], t0;
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    int r;
    if (a == NULL || b == NULL) {
        printf("FAILED %s: out of memory\n", what);
        failures++;
        free(a);
        free(b);
        return;
    }
    memset(a, 0, n * sizeof *a);
    memset(b, 0, n * sizeof *b);
    omp(a, n);
    check_status(what, pf(b, n));
    if (memcmp(a, b, n * sizeof *a) != 0) {
        printf("MISMATCH %s: the loops wrote different values\n", what);
        failures++;
    }
    for (r = 0; r < ROUNDS; r++) {
        t0 = now();
        omp(a, n);
        s_omp[r] = now() - t0;
        t0 = now();
        pf(b, n);
        s_pf[r] = now() - t0;
    }
    report(what, median(s_omp, ROUNDS), median(s_pf, ROUNDS));
    free(a);
    free(b);
}

/* Fork-join of 2 iterations, back to back and after 2 ms of idleness (long enough
 * for idle workers of either runtime to have begun to park). */
static void compare_forkjoin(void) {
    enum { BATCH = 2000 };
    double s_omp[ROUNDS], s_pf[ROUNDS], t0;
    int who[2] = {-1, -1};
    int r, k;
    struct timespec idle = {0, 2000000};

    check_status("fork-join", pfk_forkjoin2(who));
    if (who[0] < 0 || who[1] < 0) {
        printf("MISMATCH fork-join: an iteration did not run\n");
        failures++;
    }
    printf("parfor ran the 2 iterations on threads %d and %d\n", who[0], who[1]);
    for (r = 0; r < ROUNDS; r++) {
        t0 = now();
        for (k = 0; k < BATCH; k++) {
            ompk_forkjoin2(who);
        }
        s_omp[r] = (now() - t0) / BATCH;
        t0 = now();
        for (k = 0; k < BATCH; k++) {
            pfk_forkjoin2(who);
        }
        s_pf[r] = (now() - t0) / BATCH;
    }
    report("fork-join of 2, back to back", median(s_omp, ROUNDS), median(s_pf, ROUNDS));
    for (r = 0; r < ROUNDS; r++) {
        nanosleep(&idle, NULL);
        t0 = now();
        ompk_forkjoin2(who);
        s_omp[r] = now() - t0;
        nanosleep(&idle, NULL);
        t0 = now();
        pfk_forkjoin2(who);
        s_pf[r] = now() - t0;
    }
    report("fork-join of 2, after 2 ms idle", median(s_omp, ROUNDS), median(s_pf, ROUNDS));
}

int main(void) {
    double *x = malloc(MAX_N * sizeof *x);
    double *y = malloc(MAX_N * sizeof *y);
    float *xf = malloc(MAX_N * sizeof *xf);
    int32_t *xi = malloc(MAX_N * sizeof *xi);
    int64_t *xl = malloc(MAX_N * sizeof *xl);
    uint64_t state = 0x9E3779B97F4A7C15u;
    size_t i;

    if (x == NULL || y == NULL || xf == NULL || xi == NULL || xl == NULL) {
        fprintf(stderr, "omp_compare: out of memory\n");
        return 1;
    }
    /* A 64-bit linear congruential generator: reproducible data without rand(). The
     * top 53 bits give a double in [0, 1); values sit in [0.5, 1.5) so that no
     * element is negligible next to the sum, and integers in [-1000, 1000) so that
     * no sum overflows (signed overflow is undefined in the OpenMP loops). */
    for (i = 0; i < MAX_N; i++) {
        double u;
        state = state * 6364136223846793005u + 1442695040888963407u;
        u = (double)(state >> 11) / 9007199254740992.0;
        x[i] = 0.5 + u;
        y[i] = 1.5 - u;
        xf[i] = (float)(u * 2.0 - 1.0);
        xi[i] = (int32_t)(u * 2000.0) - 1000;
        xl[i] = (int64_t)xi[i] * 1000003;
    }

    printf("parfor %s, team of %lu threads; OpenMP team of %d threads\n", parfor_version(),
           (unsigned long)parfor_num_threads(), ompk_max_threads());
    printf("%-34s %15s %15s %8s\n", "workload (medians)", "OpenMP", "parfor", "ratio");
    compare_forkjoin();
    compare_sums(x);
    compare_typed(x, y, xf, xi, xl);
    compare_loop("imbalanced, dynamic, n = 100000", ompk_imbalanced_dynamic,
                 pfk_imbalanced_dynamic, 100000);
    compare_loop("imbalanced, guided, n = 100000", ompk_imbalanced_guided, pfk_imbalanced_guided,
                 100000);

    free(x);
    free(y);
    free(xf);
    free(xi);
    free(xl);
    if (failures != 0) {
        printf("omp_compare: %d check(s) failed\n", failures);
        return 1;
    }
    printf("omp_compare: parfor and OpenMP agree on every workload\n");
    return 0;
}

#endif /* !PFK_LOOPS_ONLY */
