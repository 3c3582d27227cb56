/* parfor inside OpenMP parallel regions (driven by tests/interop.rs).
 *
 * Usage: omp_nested EXPECTED_DEFAULT inline|nested
 *   inline: inside an active `omp parallel num_threads(2)` region each OpenMP thread
 *           sees parfor_num_threads() == 1, and a parfor_for asking for 4 threads runs
 *           every body on the calling thread (thread index 0, the caller's pthread).
 *   nested: (PARFOR_NESTED=1) the same call uses a team of 4: thread indices 0..3.
 * Outside any region, and inside a region of one thread (not active), parfor uses
 * its default team either way. Exit status 0 when every check holds. */
#define _POSIX_C_SOURCE 200809L
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parfor.h"

#define N 20000
#define ASKED 4

struct record {
    size_t index[N];      /* parfor_thread_index() that ran each iteration */
    pthread_t thread[N];  /* the pthread that ran it */
    int hits[N];
};

static int body(void *ctx, size_t begin, size_t end) {
    struct record *r = ctx;
    for (size_t i = begin; i < end; i++) {
        r->index[i] = parfor_thread_index();
        r->thread[i] = pthread_self();
        __atomic_fetch_add(&r->hits[i], 1, __ATOMIC_RELAXED);
    }
    return 0;
}

/* Runs a loop asking for ASKED threads; returns how many distinct thread indices ran
 * it, or -1 on an error (wrong status, an index not run once, an index out of range).
 * *only_caller is set when every iteration ran on the calling pthread. */
static int run_loop(const char *where, int *only_caller) {
    struct record *r = calloc(1, sizeof *r);
    if (!r) return -1;
    parfor_options o;
    parfor_options_init(&o);
    o.num_threads = ASKED;
    o.schedule = PARFOR_SCHEDULE_STATIC;
    parfor_status s = parfor_for(0, N, &o, body, r);
    int seen[ASKED] = {0};
    int distinct = 0;
    *only_caller = 1;
    pthread_t me = pthread_self();
    if (s != PARFOR_OK) {
        fprintf(stderr, "%s: parfor_for returned %d: %s\n", where, (int)s, parfor_last_error());
        distinct = -1;
    }
    for (size_t i = 0; i < N && distinct >= 0; i++) {
        if (r->hits[i] != 1 || r->index[i] >= ASKED) {
            fprintf(stderr, "%s: iteration %zu: %d runs, thread index %zu\n", where, i, r->hits[i], r->index[i]);
            distinct = -1;
            break;
        }
        if (!seen[r->index[i]]) {
            seen[r->index[i]] = 1;
            distinct++;
        }
        if (!pthread_equal(r->thread[i], me)) *only_caller = 0;
    }
    free(r);
    return distinct;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: omp_nested EXPECTED_DEFAULT inline|nested\n");
        return 2;
    }
    size_t expected_default = (size_t)strtoul(argv[1], NULL, 10);
    int nested = strcmp(argv[2], "nested") == 0;
    int bad = 0;
    int only_caller;

    /* Outside any region: the default team. */
    if (parfor_num_threads() != expected_default) {
        fprintf(stderr, "outside: parfor_num_threads() = %zu, want %zu\n", parfor_num_threads(), expected_default);
        bad = 1;
    }
    if (run_loop("outside", &only_caller) != ASKED) {
        fprintf(stderr, "outside: the loop did not use %d threads\n", ASKED);
        bad = 1;
    }

    /* An active region of two OpenMP threads. */
    int omp_threads = 0;
#pragma omp parallel num_threads(2) reduction(| : bad)
    {
#pragma omp single
        omp_threads = omp_get_num_threads();
        size_t n = parfor_num_threads();
        int mine_only = 0;
        int distinct = run_loop("inside", &mine_only);
        if (!nested) {
            if (n != 1 || distinct != 1 || !mine_only) {
                fprintf(stderr,
                        "inside (OpenMP thread %d): parfor_num_threads() = %zu, %d thread indices, "
                        "only the caller: %d; want 1, 1, 1\n",
                        omp_get_thread_num(), n, distinct, mine_only);
                bad |= 1;
            }
        } else {
            if (n != expected_default || distinct != ASKED) {
                fprintf(stderr,
                        "inside with PARFOR_NESTED=1 (OpenMP thread %d): parfor_num_threads() = %zu, "
                        "%d thread indices; want %zu, %d\n",
                        omp_get_thread_num(), n, distinct, expected_default, ASKED);
                bad |= 1;
            }
        }
    }
    if (omp_threads != 2) {
        fprintf(stderr, "the OpenMP region had %d threads, not 2: the test proves nothing\n", omp_threads);
        bad = 1;
    }

    /* A region of one thread is not active: parfor uses its team. */
#pragma omp parallel num_threads(1)
    {
        int mine_only = 0;
        if (parfor_num_threads() != expected_default || run_loop("inactive region", &mine_only) != ASKED) {
            fprintf(stderr, "inside a one-thread region parfor did not use its team\n");
            bad = 1;
        }
    }

    /* After the regions: the default again. */
    if (parfor_num_threads() != expected_default || run_loop("after", &only_caller) != ASKED) {
        fprintf(stderr, "after the regions parfor did not use its team\n");
        bad = 1;
    }
    if (bad) return 1;
    printf("omp_nested %s passed\n", argv[2]);
    return 0;
}
