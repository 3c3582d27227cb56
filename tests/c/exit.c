/* Leaving a process that uses parfor (driven by tests/interop.rs, also under
 * valgrind). Usage: exit MODE, where MODE says how the process ends:
 *   return-spinning   return from main right after a call (workers still spinning)
 *   exit-spinning     exit(0) right after a call
 *   return-parked     return from main after the workers have parked
 *   exit-parked       exit(3) after the workers have parked (status 3 expected)
 *   exit-during-call  another thread calls exit(0) while main is inside parfor calls
 *   atexit-call       an atexit handler calls parfor and checks the result
 * Each mode first checks a loop and a reduction. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "parfor.h"

#define N 50000

static int64_t data[N];

static int touch(void *ctx, size_t begin, size_t end) {
    unsigned char *seen = ctx;
    for (size_t i = begin; i < end; i++) seen[i]++;
    return 0;
}

/* A loop and a reduction with a team of 3; 0 when both are right. */
static int calls(void) {
    unsigned char *seen = calloc(N, 1);
    if (!seen) return 1;
    parfor_options o;
    parfor_options_init(&o);
    o.num_threads = 3;
    int bad = parfor_for(0, N, &o, touch, seen) != PARFOR_OK;
    for (size_t i = 0; i < N; i++) bad |= seen[i] != 1;
    free(seen);
    int64_t sum = 0;
    bad |= parfor_reduce(data, N, PARFOR_I64, PARFOR_SUM, &o, &sum) != PARFOR_OK;
    bad |= sum != (int64_t)N * (N - 1) / 2;
    return bad;
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static void at_exit_call(void) {
    if (calls()) {
        fprintf(stderr, "parfor gave a wrong result inside an atexit handler\n");
        _exit(1);
    }
    fprintf(stderr, "atexit call ok\n");
}

static void *exit_soon(void *arg) {
    (void)arg;
    sleep_ms(20);
    exit(0);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    const char *mode = argv[1];
    for (size_t i = 0; i < N; i++) data[i] = (int64_t)i;
    if (calls()) {
        fprintf(stderr, "wrong result before exit\n");
        return 1;
    }
    if (strcmp(mode, "return-spinning") == 0) return 0;
    if (strcmp(mode, "exit-spinning") == 0) exit(0);
    if (strcmp(mode, "return-parked") == 0) {
        sleep_ms(100); /* far beyond the default 2 ms spin */
        return 0;
    }
    if (strcmp(mode, "exit-parked") == 0) {
        sleep_ms(100);
        exit(3);
    }
    if (strcmp(mode, "exit-during-call") == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, exit_soon, NULL) != 0) return 1;
        for (;;) {
            if (calls()) {
                fprintf(stderr, "wrong result while exiting\n");
                _exit(1);
            }
        }
    }
    if (strcmp(mode, "atexit-call") == 0) {
        if (atexit(at_exit_call) != 0) return 1;
        return 0;
    }
    fprintf(stderr, "unknown mode %s\n", mode);
    return 2;
}
