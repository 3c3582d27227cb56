/* The EPCC syncbench method for fork-join and reduction overheads (J. M. Bull et
 * al., "EPCC OpenMP MicroBenchmark Suite", version 4.0: syncbench.c and common.c of
 * github.com/EPCCed/epcc-openmp-microbenchmarks, openmpbench_C_v40), written anew for
 * parfor-compare: each test repeats a parallel construct `reps` times, and in every
 * construct each of the team's T iterations runs a short delay (about 0.1 us, the
 * suite's default). The driver (compare/src/epcc.rs) times these against the same
 * number of delays run serially; the difference per repetition is the overhead.
 *
 * Built twice: with gcc -fopenmp and -DEPCC_PARFOR (libgomp and parfor sides, the
 * same delay code for both) into the comparison binary, and with clang
 * -fopenmp=libomp (LLVM libomp side) into the shared object the driver loads.
 */
/* clock_gettime under -std=c99. */
#define _POSIX_C_SOURCE 199309L
#include <stddef.h>
#include <time.h>

#include <omp.h>
#ifdef EPCC_PARFOR
#include "parfor.h"
#endif

/* Written only when the delay's sum is negative, which it never is: it keeps the
 * compiler from dropping the loop, as the suite's printf does. */
volatile float epcc_sink;

/* `len` dependent float additions: without -ffast-math the compiler may neither
 * reassociate nor vectorise them, so the time grows linearly with `len`. noinline:
 * every caller runs the same calibrated code. */
__attribute__((noinline)) static void delay(int len) {
    float a = 0.0f;
    for (int i = 0; i < len; i++)
        a += (float)i;
    if (a < 0.0f)
        epcc_sink = a;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The delay length whose mean time over 1000 calls reaches `seconds`, grown by 10 %
 * (plus one) per step from zero: the suite's calibration procedure, except that
 * each length is timed three times and the fastest counts, so that one preemption
 * on a busy machine does not end the search early (which gave a third of the
 * wanted delay on the loaded 2-CPU development machine). */
int epcc_delay_length(double seconds) {
    int len = 0;
    double lapsed = 0.0;
    while (lapsed < seconds) {
        len = (int)(len * 1.1) + 1;
        lapsed = 1e30;
        for (int t = 0; t < 3; t++) {
            double start = now_seconds();
            for (int i = 0; i < 1000; i++)
                delay(len);
            double d = (now_seconds() - start) / 1000.0;
            lapsed = d < lapsed ? d : lapsed;
        }
    }
    return len;
}

/* Reference of the PARALLEL FOR test: the delay of one iteration, `reps` times. */
int epcc_refer(unsigned long reps, int len, int team, long *count) {
    (void)team;
    for (unsigned long j = 0; j < reps; j++)
        delay(len);
    *count = (long)reps;
    return 0;
}

/* Reference of the REDUCTION test: a delay and an increment, `reps` times. */
int epcc_referred(unsigned long reps, int len, int team, long *count) {
    (void)team;
    long a = 0;
    for (unsigned long j = 0; j < reps; j++) {
        delay(len);
        a += 1;
    }
    *count = a;
    return 0;
}

/* PARALLEL FOR: `reps` times `omp parallel for` over `team` iterations. */
int epcc_omp_pfor(unsigned long reps, int len, int team, long *count) {
    for (unsigned long j = 0; j < reps; j++) {
#pragma omp parallel for
        for (int i = 0; i < team; i++)
            delay(len);
    }
    *count = (long)reps * team;
    return 0;
}

/* REDUCTION as the suite writes it: `omp parallel reduction(+)`, each thread one
 * delay and one increment. */
int epcc_omp_red(unsigned long reps, int len, int team, long *count) {
    (void)team;
    long a = 0;
    for (unsigned long j = 0; j < reps; j++) {
#pragma omp parallel reduction(+ : a)
        {
            delay(len);
            a += 1;
        }
    }
    *count = a;
    return 0;
}

/* REDUCTION over a loop, the form a program switching to parfor_reduce_with has:
 * `omp parallel for reduction(+)` over `team` iterations. */
int epcc_omp_red_for(unsigned long reps, int len, int team, long *count) {
    long a = 0;
    for (unsigned long j = 0; j < reps; j++) {
#pragma omp parallel for reduction(+ : a)
        for (int i = 0; i < team; i++) {
            delay(len);
            a += 1;
        }
    }
    *count = a;
    return 0;
}

int epcc_omp_team(void) { return omp_get_max_threads(); }

#ifdef EPCC_PARFOR
static int pf_body(void *ctx, size_t b, size_t e) {
    int len = *(const int *)ctx;
    for (size_t i = b; i < e; i++)
        delay(len);
    return 0;
}

/* PARALLEL FOR with parfor: `reps` times parfor_for over `team` iterations. */
int epcc_parfor_pfor(unsigned long reps, int len, int team, long *count) {
    for (unsigned long j = 0; j < reps; j++) {
        parfor_status s = parfor_for(0, (size_t)team, NULL, pf_body, &len);
        if (s != PARFOR_OK)
            return (int)s;
    }
    *count = (long)reps * team;
    return 0;
}

static int pf_fold(void *ctx, size_t b, size_t e, void *acc) {
    int len = *(const int *)ctx;
    for (size_t i = b; i < e; i++) {
        delay(len);
        *(long *)acc += 1;
    }
    return 0;
}

static void pf_combine(void *ctx, void *acc, const void *other) {
    (void)ctx;
    *(long *)acc += *(const long *)other;
}

/* REDUCTION with parfor: `reps` times parfor_reduce_with over `team` iterations,
 * each a delay and an increment. */
int epcc_parfor_red(unsigned long reps, int len, int team, long *count) {
    long total = 0;
    const long zero = 0;
    for (unsigned long j = 0; j < reps; j++) {
        long a = 0;
        parfor_status s = parfor_reduce_with(0, (size_t)team, &zero, sizeof zero, NULL, pf_fold,
                                             pf_combine, &len, &a);
        if (s != PARFOR_OK)
            return (int)s;
        total += a;
    }
    *count = total;
    return 0;
}

int epcc_parfor_team(void) { return (int)parfor_num_threads(); }
#endif
