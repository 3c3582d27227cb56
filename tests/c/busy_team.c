/* Issue 13, row 6: several application threads call at once, and the parts of all
 * their calls wait for each other (a rendezvous of every part of every call). That
 * completes only if no caller waits for another caller's bodies: each call's parts
 * must run at the same time as the others'. Before, every caller that found the
 * team busy shared one pool of team-size threads and blocked on it, so the
 * rendezvous could never fill. A part gives up after a generous bound (a hang bound,
 * not a timing check) and the call then fails.
 * Prints "busy_team passed". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "parfor.h"

#define CALLERS 5
#define PARTS 2

static atomic_int arrived;
static atomic_int started_first;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int rendezvous(void *ctx, size_t b, size_t e) {
    (void)ctx;
    int parts = (int)(e - b);
    atomic_fetch_add(&arrived, parts);
    atomic_store(&started_first, 1);
    double limit = now() + 30.0;
    while (atomic_load(&arrived) < CALLERS * PARTS) {
        if (now() > limit) return 1;
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
    return 0;
}

static void *caller(void *arg) {
    (void)arg;
    parfor_options o;
    parfor_options_init(&o);
    o.num_threads = PARTS;
    o.schedule = PARFOR_SCHEDULE_STATIC;
    return (void *)(long)parfor_for(0, PARTS, &o, rendezvous, NULL);
}

int main(void) {
    pthread_t t[CALLERS];
    /* The first caller holds the team before the others arrive. */
    pthread_create(&t[0], NULL, caller, NULL);
    while (!atomic_load(&started_first)) {
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
    for (int i = 1; i < CALLERS; i++) pthread_create(&t[i], NULL, caller, NULL);
    int bad = 0;
    for (int i = 0; i < CALLERS; i++) {
        void *r;
        pthread_join(t[i], &r);
        if (r != NULL) {
            fprintf(stderr, "caller %d: status %ld (%s)\n", i, (long)r, parfor_last_error());
            bad = 1;
        }
    }
    if (bad || atomic_load(&arrived) != CALLERS * PARTS) return 1;
    printf("busy_team passed\n");
    return 0;
}
