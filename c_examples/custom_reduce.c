/* custom_reduce: a user-defined reduction with parfor_reduce_with. Computes the mean
 * and variance of a data set in one parallel pass: each block folds its elements
 * with Welford's update into {count, mean, M2}, and blocks are merged with Chan,
 * Golub and LeVeque's pairwise formula. Checks the result against a two-pass
 * long double reference, and shows that it is the same bit for bit for 1, 2, 3
 * and 4 threads and for a dynamic schedule.
 *
 * Build (from the repository root, after `cargo build --release`; -lm for sqrt):
 *   $ cc -std=c99 -O2 -Iinclude c_examples/custom_reduce.c -Ltarget/release -lparfor \
 *       -Wl,-rpath,$PWD/target/release -lm -o custom_reduce
 *
 * Exit status: 0 when every check passes, 1 otherwise. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parfor.h"

#define N 1000003

/* The accumulator: plain bytes to parfor, which copies the identity into each block's
 * accumulator and never looks inside. The count is a double because it only takes
 * part in floating-point formulas and is exact up to 2^53. */
struct moments {
    double count;
    double mean;
    double m2; /* sum of squared deviations from the mean */
};

/* Welford's update over the elements [begin, end) of the data in ctx. */
static int fold(void *ctx, size_t begin, size_t end, void *acc) {
    const double *x = ctx;
    struct moments *m = acc;
    size_t i;
    for (i = begin; i < end; i++) {
        double delta = x[i] - m->mean;
        m->count += 1.0;
        m->mean += delta / m->count;
        m->m2 += delta * (x[i] - m->mean);
    }
    return 0;
}

/* Chan et al.'s merge of two partial results; parfor always passes the earlier range
 * as `acc`. The empty cases keep the identity {0, 0, 0} exactly neutral. */
static void combine(void *ctx, void *acc, const void *other) {
    struct moments *a = acc;
    const struct moments *b = other;
    double count, delta;
    (void)ctx;
    if (b->count == 0.0) {
        return;
    }
    if (a->count == 0.0) {
        *a = *b;
        return;
    }
    count = a->count + b->count;
    delta = b->mean - a->mean;
    a->mean += delta * (b->count / count);
    a->m2 += b->m2 + delta * delta * (a->count * b->count / count);
    a->count = count;
}

static int run(const double *x, size_t num_threads, parfor_schedule schedule,
               struct moments *out) {
    static const struct moments identity = {0.0, 0.0, 0.0};
    parfor_options opts;
    parfor_status st;
    parfor_options_init(&opts);
    opts.num_threads = num_threads;
    opts.schedule = schedule;
    st = parfor_reduce_with(0, N, &identity, sizeof identity, &opts, fold, combine, (void *)x,
                            out);
    if (st != PARFOR_OK) {
        printf("parfor_reduce_with failed: %s (%s)\n", parfor_status_message(st),
               parfor_last_error());
        return 0;
    }
    return 1;
}

int main(void) {
    double *x = malloc(N * sizeof *x);
    long double sum = 0.0L, mean_ref, m2_ref = 0.0L, max_abs = 0.0L, kappa, u = DBL_EPSILON / 2;
    long double mean_err, var_err, mean_tol, var_tol;
    struct moments m, again;
    uint64_t state = 88172645463325252u;
    size_t i, t;
    int ok = 1;

    if (x == NULL) {
        fprintf(stderr, "custom_reduce: out of memory\n");
        return 1;
    }
    /* Values around 1000 with a spread of about 1: a large mean relative to the
     * spread is where the one-pass textbook formula (sum of squares minus square of
     * sum) loses digits and Welford's update does not. */
    for (i = 0; i < N; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        x[i] = 1000.0 + (double)(state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
    }

    /* Two-pass reference in long double. */
    for (i = 0; i < N; i++) {
        sum += x[i];
        if (fabsl((long double)x[i]) > max_abs) max_abs = fabsl((long double)x[i]);
    }
    mean_ref = sum / N;
    for (i = 0; i < N; i++) {
        long double dev = x[i] - mean_ref;
        m2_ref += dev * dev;
    }

    if (!run(x, 1, PARFOR_SCHEDULE_STATIC, &m)) {
        free(x);
        return 1;
    }
    printf("n = %.0f, mean = %.17g, variance = %.17g (sample: %.17g)\n", m.count, m.mean,
           m.m2 / m.count, m.m2 / (m.count - 1.0));
    printf("reference (two-pass, long double): mean = %.17Lg, variance = %.17Lg\n", mean_ref,
           m2_ref / N);

    /* Error bounds. The updating (Welford) algorithm computes M2 with relative error
     * at most about n * kappa * u, where kappa = sqrt(1 + n mean^2 / M2) is the
     * condition number of the variance (Chan, Golub and LeVeque, "Algorithms for
     * computing the sample variance", The American Statistician 37(3), 1983, table 1);
     * blocking and pairwise merging only shorten the chains of updates. The mean is a
     * running weighted average: each of the n updates adds at most a few roundings of
     * size u * max|x|, hence 4 n u max|x|. */
    kappa = sqrtl(1.0L + (long double)N * mean_ref * mean_ref / m2_ref);
    var_tol = N * kappa * u;
    mean_tol = 4.0L * N * u * max_abs;
    mean_err = fabsl(m.mean - mean_ref);
    var_err = fabsl(m.m2 - m2_ref) / m2_ref;
    printf("mean error %.3Lg (bound %.3Lg), variance relative error %.3Lg (bound %.3Lg)\n",
           mean_err, mean_tol, var_err, var_tol);
    if (m.count != (double)N || !(mean_err <= mean_tol) || !(var_err <= var_tol)) {
        printf("FAIL: result outside the error bound\n");
        ok = 0;
    }

    /* The block partition depends only on the range and acc_size, and the merge tree
     * is fixed, so every team size must give the same bytes. */
    for (t = 1; t <= 4; t++) {
        int same = run(x, t, PARFOR_SCHEDULE_STATIC, &again) && memcmp(&m, &again, sizeof m) == 0;
        printf("num_threads %zu: %s\n", t, same ? "bitwise identical" : "DIFFERENT");
        ok = ok && same;
    }
    {
        int same = run(x, 3, PARFOR_SCHEDULE_DYNAMIC, &again) && memcmp(&m, &again, sizeof m) == 0;
        printf("num_threads 3, dynamic schedule: %s\n", same ? "bitwise identical" : "DIFFERENT");
        ok = ok && same;
    }
    free(x);
    if (!ok) {
        printf("custom_reduce: FAILED\n");
        return 1;
    }
    printf("custom_reduce: ok\n");
    return 0;
}
