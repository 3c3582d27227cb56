/* Issue 13, row 7: a callback that ends its thread with a forced unwind
 * (pthread_exit, or cancellation at a cancellation point) must have that unwind pass
 * through parfor: the thread ends as POSIX says, its joiner gets the value, and
 * parfor keeps working. Before, the unwind was caught by catch_unwind (in the
 * export's panic guard, in the worker loop and in std's thread start) and glibc
 * aborted: "FATAL: exception not rethrown".
 *
 * Scenarios (argv[1]):
 *   leader_exit  the calling thread's own part calls pthread_exit(42): the thread
 *                ends with 42, after the helper finished its part (the helper's
 *                range borrows the leader's stack); the next call works.
 *   worker_exit  a worker's part calls pthread_exit: the call returns
 *                PARFOR_ERR_RUNTIME naming the ended worker; 20 rounds do not grow
 *                the process's threads; the next call covers every index once.
 *   cancel       the calling thread is cancelled while its body sleeps: it ends
 *                with PTHREAD_CANCELED; the next call works.
 *   reduce_exit  parfor_reduce_with's fold calls pthread_exit on the caller.
 *   sort_exit    parfor_sort_with's comparator calls pthread_exit on the caller.
 * Prints "forced_unwind <scenario> passed". */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parfor.h"

#define N 1000
#define HALF (N / 2)

static atomic_int helper_items;
static unsigned char seen[N];

static void fail_with(const char *what) {
    fprintf(stderr, "forced_unwind: %s\n", what);
    exit(1);
}

static void sleep_ms(long ms) {
    struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
}

static int threads_now(void) {
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static parfor_options two_static(void) {
    parfor_options o;
    parfor_options_init(&o);
    o.num_threads = 2;
    o.schedule = PARFOR_SCHEDULE_STATIC;
    return o;
}

/* Marks every index of a normal call; checks each is seen once. */
static int mark(void *ctx, size_t b, size_t e) {
    (void)ctx;
    for (size_t i = b; i < e; i++) seen[i]++;
    return 0;
}

static void check_normal_call(void) {
    memset(seen, 0, sizeof seen);
    parfor_options o = two_static();
    parfor_status s = parfor_for(0, N, &o, mark, NULL);
    if (s != PARFOR_OK) {
        fprintf(stderr, "normal call: status %d: %s\n", (int)s, parfor_last_error());
        exit(1);
    }
    for (int i = 0; i < N; i++)
        if (seen[i] != 1) fail_with("a normal call after the forced unwind missed an index");
}

/* The leader (part 0) ends its thread; the helper's part sleeps first, then counts. */
static int leader_exits(void *ctx, size_t b, size_t e) {
    (void)ctx;
    if (parfor_thread_index() == 0) pthread_exit((void *)42);
    sleep_ms(50);
    atomic_fetch_add(&helper_items, (int)(e - b));
    return 0;
}

static void *call_leader_exits(void *arg) {
    (void)arg;
    parfor_options o = two_static();
    parfor_for(0, N, &o, leader_exits, NULL);
    return (void *)1; /* not reached: the body ended this thread */
}

static int worker_exits(void *ctx, size_t b, size_t e) {
    (void)ctx;
    if (parfor_thread_index() != 0) pthread_exit(NULL);
    for (size_t i = b; i < e; i++) seen[i]++;
    return 0;
}

static int sleeps(void *ctx, size_t b, size_t e) {
    (void)ctx;
    for (size_t i = b; i < e; i++) sleep_ms(1); /* nanosleep: a cancellation point */
    return 0;
}

static atomic_int cancel_started;

static void *call_sleeps(void *arg) {
    (void)arg;
    parfor_options o = two_static();
    atomic_store(&cancel_started, 1);
    parfor_for(0, 400, &o, sleeps, NULL);
    return (void *)1;
}

static int fold_exits(void *ctx, size_t b, size_t e, void *acc) {
    (void)ctx;
    if (parfor_thread_index() == 0) pthread_exit((void *)43);
    sleep_ms(20);
    *(long *)acc += (long)(e - b);
    return 0;
}

static void add_long(void *ctx, void *acc, const void *other) {
    (void)ctx;
    *(long *)acc += *(const long *)other;
}

static long reduce_out = -7;

static void *call_reduce(void *arg) {
    (void)arg;
    parfor_options o = two_static();
    long zero = 0;
    parfor_reduce_with(0, N, &zero, sizeof zero, &o, fold_exits, add_long, NULL, &reduce_out);
    return (void *)1;
}

static int cmp_exits(void *ctx, const void *a, const void *b) {
    (void)ctx;
    pthread_exit((void *)44);
    return *(const int *)a - *(const int *)b;
}

static void *call_sort(void *arg) {
    (void)arg;
    int v[100];
    for (int i = 0; i < 100; i++) v[i] = 100 - i;
    parfor_sort_with(v, 100, sizeof v[0], cmp_exits, NULL, 0, NULL);
    return (void *)1;
}

static void *join(void *(*f)(void *)) {
    pthread_t t;
    if (pthread_create(&t, NULL, f, NULL) != 0) fail_with("pthread_create");
    void *r = NULL;
    if (pthread_join(t, &r) != 0) fail_with("pthread_join");
    return r;
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    /* Warm up: the team's worker exists before the scenario. */
    check_normal_call();
    if (strcmp(what, "leader_exit") == 0) {
        for (int round = 0; round < 5; round++) {
            atomic_store(&helper_items, 0);
            void *r = join(call_leader_exits);
            if (r != (void *)42) fail_with("the thread did not end with pthread_exit's value");
            if (atomic_load(&helper_items) != HALF)
                fail_with("the leader's thread ended before its helper finished its part");
            check_normal_call();
        }
    } else if (strcmp(what, "worker_exit") == 0) {
        int before = threads_now();
        for (int round = 0; round < 20; round++) {
            memset(seen, 0, sizeof seen);
            parfor_options o = two_static();
            parfor_status s = parfor_for(0, N, &o, worker_exits, NULL);
            if (s != PARFOR_ERR_RUNTIME) {
                fprintf(stderr, "round %d: status %d, not PARFOR_ERR_RUNTIME\n", round, (int)s);
                exit(1);
            }
            if (strstr(parfor_last_error(), "ended worker thread parfor-1") == NULL) {
                fprintf(stderr, "message: %s\n", parfor_last_error());
                exit(1);
            }
            for (int i = 0; i < HALF; i++)
                if (seen[i] != 1) fail_with("the leader's part did not run");
        }
        check_normal_call();
        /* The ended threads are gone (give the last one time to finish unwinding). */
        int after = -1;
        for (int tries = 0; tries < 200; tries++) {
            after = threads_now();
            if (after <= before) break;
            sleep_ms(10);
        }
        if (after > before) {
            fprintf(stderr, "threads: %d before, %d after 20 ended workers\n", before, after);
            exit(1);
        }
    } else if (strcmp(what, "cancel") == 0) {
        for (int round = 0; round < 3; round++) {
            pthread_t t;
            atomic_store(&cancel_started, 0);
            if (pthread_create(&t, NULL, call_sleeps, NULL) != 0) fail_with("pthread_create");
            while (!atomic_load(&cancel_started)) sleep_ms(1);
            sleep_ms(30);
            pthread_cancel(t);
            void *r = NULL;
            pthread_join(t, &r);
            if (r != PTHREAD_CANCELED) fail_with("the cancelled thread did not end cancelled");
            check_normal_call();
        }
    } else if (strcmp(what, "reduce_exit") == 0) {
        void *r = join(call_reduce);
        if (r != (void *)43) fail_with("the fold's pthread_exit value was lost");
        if (reduce_out != -7) fail_with("out was written by a reduction that did not finish");
        check_normal_call();
    } else if (strcmp(what, "sort_exit") == 0) {
        void *r = join(call_sort);
        if (r != (void *)44) fail_with("the comparator's pthread_exit value was lost");
        check_normal_call();
    } else {
        fail_with("unknown scenario");
    }
    printf("forced_unwind %s passed\n", what);
    return 0;
}
