/* hello_for: the smallest useful parfor program. Fills an array in parallel with
 * parfor_for, checks every element against what a serial loop would write, and
 * prints the team size and which thread indices did some of the work.
 *
 * Build (from the repository root, after `cargo build --release`):
 *   $ cc -std=c99 -O2 -Iinclude c_examples/hello_for.c -Ltarget/release -lparfor \
 *       -Wl,-rpath,$PWD/target/release -o hello_for
 * Against an installed parfor (make install): cc hello_for.c $(pkg-config --cflags --libs parfor)
 * Exit status: 0 when every element is right, 1 otherwise. */
#include <stdio.h>
#include <stdlib.h>

#include "parfor.h"

/* Large enough that the runtime hands out ranges to more than one thread. */
#define N 1000003

struct fill_ctx {
    double *x;
    /* used[t] is set by the thread with index t only, so the writes never race. */
    unsigned char used[PARFOR_MAX_THREADS];
};

static int fill(void *ctx, size_t begin, size_t end) {
    struct fill_ctx *c = ctx;
    size_t i;
    size_t t = parfor_thread_index();
    for (i = begin; i < end; i++) {
        c->x[i] = 0.5 * (double)i;
    }
    if (t < PARFOR_MAX_THREADS) {
        c->used[t] = 1;
    }
    return 0;
}

int main(void) {
    static struct fill_ctx ctx; /* static: zero-initialised and off the stack */
    size_t team = parfor_num_threads();
    size_t i;
    size_t bad = 0;
    parfor_status st;

    ctx.x = malloc(N * sizeof *ctx.x);
    if (ctx.x == NULL) {
        fprintf(stderr, "hello_for: out of memory\n");
        return 1;
    }
    st = parfor_for(0, N, NULL, fill, &ctx);
    if (st != PARFOR_OK) {
        fprintf(stderr, "hello_for: parfor_for failed: %s (%s)\n", parfor_status_message(st),
                parfor_last_error());
        free(ctx.x);
        return 1;
    }
    for (i = 0; i < N; i++) {
        if (ctx.x[i] != 0.5 * (double)i) {
            bad++;
        }
    }
    printf("parfor %s: team of %zu threads; thread indices used:", parfor_version(), team);
    for (i = 0; i < PARFOR_MAX_THREADS; i++) {
        if (ctx.used[i]) {
            printf(" %zu", i);
            /* An index outside 0..team-1 breaks the documented contract. */
            if (i >= team) {
                bad++;
            }
        }
    }
    printf("\n");
    free(ctx.x);
    if (bad != 0) {
        printf("hello_for: FAILED (%zu wrong)\n", bad);
        return 1;
    }
    printf("hello_for: %d elements ok\n", N);
    return 0;
}
