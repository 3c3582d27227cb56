/* parfor calls run on the OpenMP runtime's threads (driven by tests/interop.rs with
 * PARFOR_OMP_TEAM=always; see src/runtime/omp.rs).
 *
 * Usage: omp_borrow active|limited
 *   active:  OpenMP gives the 4 threads asked: every body must run inside an active
 *            OpenMP region (omp_in_parallel() == 1) with thread indices 0..3.
 *   limited: run under OMP_THREAD_LIMIT=1, so OpenMP gives one thread: the 4 parts
 *            must still all run, one after the other on the caller.
 * Either way: every index once, a SUM of doubles bitwise equal to the one-thread
 * result, an integer SUM equal to the serial one, a failing body reported as
 * PARFOR_ERR_CALLBACK with the runtime usable afterwards, and a user reduction equal
 * to the one-thread result. Then a child of fork() (libgomp's threads do not survive
 * fork, so the child must not borrow them) runs a loop and a SUM and must get the
 * same results without hanging. Exit status 0 when every check holds. */
#define _POSIX_C_SOURCE 200809L
#include <sys/wait.h>
#include <unistd.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parfor.h"

#define N 100000
#define ASKED 4

struct record {
    int hits[N];
    int in_region[N];
    size_t index[N];
};

static int body(void *ctx, size_t begin, size_t end) {
    struct record *r = ctx;
    for (size_t i = begin; i < end; i++) {
        __atomic_fetch_add(&r->hits[i], 1, __ATOMIC_RELAXED);
        r->in_region[i] = omp_in_parallel();
        r->index[i] = parfor_thread_index();
    }
    return 0;
}

static int failing_body(void *ctx, size_t begin, size_t end) {
    (void)ctx;
    return (begin <= 777 && 777 < end) ? 5 : 0;
}

static int sumsq_fold(void *ctx, size_t begin, size_t end, void *acc) {
    const double *x = ctx;
    double s = *(double *)acc;
    for (size_t i = begin; i < end; i++) s += x[i] * x[i];
    *(double *)acc = s;
    return 0;
}

static void sumsq_combine(void *ctx, void *acc, const void *other) {
    (void)ctx;
    *(double *)acc += *(const double *)other;
}

static parfor_options team_of(size_t n) {
    parfor_options o;
    parfor_options_init(&o);
    o.num_threads = n;
    return o;
}

int main(int argc, char **argv) {
    if (argc != 2 || (strcmp(argv[1], "active") && strcmp(argv[1], "limited"))) {
        fprintf(stderr, "usage: omp_borrow active|limited\n");
        return 2;
    }
    int active = strcmp(argv[1], "active") == 0;
    int bad = 0;

    struct record *r = calloc(1, sizeof *r);
    double *x = malloc(N * sizeof *x);
    int64_t *xi = malloc(N * sizeof *xi);
    if (!r || !x || !xi) return 2;
    for (size_t i = 0; i < N; i++) {
        x[i] = 1.0 / (double)(i + 1) + (double)(i % 7) * 1e-3;
        xi[i] = (int64_t)(i * 2654435761u % 1000003) - 500000;
    }

    parfor_options four = team_of(ASKED), one = team_of(1);
    for (int rep = 0; rep < 3; rep++) {
        memset(r, 0, sizeof *r);
        parfor_status s = parfor_for(0, N, &four, body, r);
        if (s != PARFOR_OK) {
            fprintf(stderr, "parfor_for: status %d: %s\n", (int)s, parfor_last_error());
            bad = 1;
            break;
        }
        int seen[ASKED] = {0};
        for (size_t i = 0; i < N; i++) {
            if (r->hits[i] != 1 || r->index[i] >= ASKED) {
                fprintf(stderr, "index %zu ran %d times, thread index %zu\n", i, r->hits[i], r->index[i]);
                bad = 1;
                break;
            }
            seen[r->index[i]] = 1;
            if (r->in_region[i] != active) {
                fprintf(stderr, "index %zu: omp_in_parallel() = %d in the body, want %d\n", i,
                        r->in_region[i], active);
                bad = 1;
                break;
            }
        }
        for (int t = 0; t < ASKED; t++) {
            if (!seen[t]) {
                fprintf(stderr, "part %d ran no iteration\n", t);
                bad = 1;
            }
        }
    }

    double s4 = 0, s1 = 0;
    if (parfor_reduce(x, N, PARFOR_F64, PARFOR_SUM, &four, &s4) != PARFOR_OK ||
        parfor_reduce(x, N, PARFOR_F64, PARFOR_SUM, &one, &s1) != PARFOR_OK || memcmp(&s4, &s1, sizeof s1)) {
        fprintf(stderr, "SUM f64: %.17g with 4 threads, %.17g with 1 (%s)\n", s4, s1, parfor_last_error());
        bad = 1;
    }
    int64_t i4 = 0, serial = 0;
    for (size_t i = 0; i < N; i++) serial += xi[i];
    if (parfor_reduce(xi, N, PARFOR_I64, PARFOR_SUM, &four, &i4) != PARFOR_OK || i4 != serial) {
        fprintf(stderr, "SUM i64: %lld, serial %lld\n", (long long)i4, (long long)serial);
        bad = 1;
    }

    parfor_status s = parfor_for(0, N, &four, failing_body, NULL);
    if (s != PARFOR_ERR_CALLBACK) {
        fprintf(stderr, "failing body: status %d, want PARFOR_ERR_CALLBACK\n", (int)s);
        bad = 1;
    }

    double zero = 0, q4 = -1, q1 = -2;
    if (parfor_reduce_with(0, N, &zero, sizeof zero, &four, sumsq_fold, sumsq_combine, x, &q4) != PARFOR_OK ||
        parfor_reduce_with(0, N, &zero, sizeof zero, &one, sumsq_fold, sumsq_combine, x, &q1) != PARFOR_OK ||
        memcmp(&q4, &q1, sizeof q1)) {
        fprintf(stderr, "reduce_with: %.17g with 4 threads, %.17g with 1 (%s)\n", q4, q1, parfor_last_error());
        bad = 1;
    }

    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 2;
    }
    if (child == 0) {
        memset(r, 0, sizeof *r);
        int cbad = parfor_for(0, N, &four, body, r) != PARFOR_OK;
        for (size_t i = 0; i < N && !cbad; i++) cbad = r->hits[i] != 1;
        double c4 = 0;
        cbad |= parfor_reduce(x, N, PARFOR_F64, PARFOR_SUM, &four, &c4) != PARFOR_OK || memcmp(&c4, &s1, sizeof s1);
        if (cbad) fprintf(stderr, "child of fork(): wrong results (%s)\n", parfor_last_error());
        _exit(cbad);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child of fork() failed: status %d\n", status);
        bad = 1;
    }

    free(r);
    free(x);
    free(xi);
    if (bad) return 1;
    printf("omp_borrow %s passed\n", argv[1]);
    return 0;
}
