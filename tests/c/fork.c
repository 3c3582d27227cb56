/* fork() in a program that uses parfor (driven by tests/fork.rs).
 *
 * The parent starts parfor's team and its rayon fallback pool, then forks, several
 * times and in several ways:
 *   1. from the thread that used parfor, with parfor idle;
 *   2. from another thread, with parfor idle;
 *   3. from the main thread while another thread is inside parfor calls (the team
 *      is busy at the moment of the fork, so the child inherits a "busy" team whose
 *      workers do not exist there).
 * Each child calls parfor at once (loops with several team sizes, a large reduction,
 * concurrent calls from two threads so that the fallback pool is needed too, and a
 * fork of its own) and checks every result exactly. alarm() turns a hang into a
 * SIGALRM death, which the parent reports. After each fork the parent checks that
 * its own parfor still works. Exit status 0 means every check passed. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "parfor.h"

#define N_LOOP 200000
#define N_DATA 300000 /* 2.4 MB of int64: far above the 192 KiB serial threshold */
#define CHILD_SECONDS 20

static int64_t data[N_DATA];
static int64_t data_sum;

struct counts {
    _Atomic unsigned char *hits;
    size_t n;
};

static int mark(void *ctx, size_t begin, size_t end) {
    struct counts *c = ctx;
    for (size_t i = begin; i < end; i++) atomic_fetch_add_explicit(&c->hits[i], 1, memory_order_relaxed);
    return 0;
}

/* A loop over [0, N_LOOP) with `threads` threads: 0 when every index ran once. */
static int check_loop(const char *who, size_t threads, int schedule) {
    struct counts c = {calloc(N_LOOP, 1), N_LOOP};
    if (!c.hits) return 1;
    parfor_options o;
    parfor_options_init(&o);
    o.num_threads = threads;
    o.schedule = (parfor_schedule)schedule;
    o.chunk = schedule == PARFOR_SCHEDULE_STATIC ? 0 : 97;
    parfor_status s = parfor_for(0, N_LOOP, &o, mark, &c);
    int bad = 0;
    if (s != PARFOR_OK) {
        fprintf(stderr, "%s: parfor_for (%zu threads) returned %d: %s\n", who, threads, (int)s, parfor_last_error());
        bad = 1;
    }
    for (size_t i = 0; i < N_LOOP && !bad; i++) {
        if (c.hits[i] != 1) {
            fprintf(stderr, "%s: index %zu ran %d times (%zu threads)\n", who, i, (int)c.hits[i], threads);
            bad = 1;
        }
    }
    free((void *)c.hits);
    return bad;
}

static int check_reduce(const char *who, size_t threads) {
    parfor_options o;
    parfor_options_init(&o);
    o.num_threads = threads;
    int64_t out = 0;
    parfor_status s = parfor_reduce(data, N_DATA, PARFOR_I64, PARFOR_SUM, &o, &out);
    if (s != PARFOR_OK || out != data_sum) {
        fprintf(stderr, "%s: parfor_reduce (%zu threads): status %d, %lld != %lld: %s\n", who, threads, (int)s,
                (long long)out, (long long)data_sum, parfor_last_error());
        return 1;
    }
    return 0;
}

/* Everything a process checks: several team sizes and schedules, a reduction. */
static int check_all(const char *who) {
    int bad = 0;
    bad |= check_loop(who, 2, PARFOR_SCHEDULE_STATIC);
    bad |= check_loop(who, 4, PARFOR_SCHEDULE_DYNAMIC);
    bad |= check_loop(who, 0, PARFOR_SCHEDULE_GUIDED);
    bad |= check_reduce(who, 3);
    bad |= check_reduce(who, 0);
    return bad;
}

static void *check_thread(void *arg) {
    return (void *)(intptr_t)check_all(arg);
}

/* Two threads at once, so that one of them finds the team busy and takes the
 * fallback pool. */
static int check_concurrent(const char *who) {
    pthread_t t;
    if (pthread_create(&t, NULL, check_thread, (void *)who) != 0) return 1;
    int bad = check_all(who);
    void *r;
    pthread_join(t, &r);
    return bad | (int)(intptr_t)r;
}

/* What a forked process checks, at once: loops, a reduction, concurrent calls. */
static int child_checks(const char *who) {
    alarm(CHILD_SECONDS);
    return check_all(who) | check_concurrent(who);
}

/* Body of a child: the checks, then the same from a grandchild. */
static _Noreturn void child_main(const char *who) {
    int bad = child_checks(who);
    if (!bad) {
        pid_t g = fork();
        if (g == 0) _exit(child_checks("grandchild"));
        int st = 0;
        if (g < 0 || waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "%s: grandchild failed (status %#x)\n", who, st);
            bad = 1;
        }
    }
    _exit(bad);
}

/* Forks; the child runs child_main; returns 0 when the child passed. */
static int fork_and_check(const char *who) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) child_main(who);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            perror("waitpid");
            return 1;
        }
    }
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "%s: child killed by signal %d%s\n", who, WTERMSIG(st),
                WTERMSIG(st) == SIGALRM ? " (hung: alarm fired)" : "");
        return 1;
    }
    if (WEXITSTATUS(st) != 0) {
        fprintf(stderr, "%s: child failed\n", who);
        return 1;
    }
    return 0;
}

static void *fork_from_thread(void *arg) {
    return (void *)(intptr_t)fork_and_check(arg);
}

/* Keeps a second thread inside parfor calls while the main thread forks. */
static atomic_int stop_busy;

static void *busy_caller(void *arg) {
    (void)arg;
    int bad = 0;
    while (!atomic_load(&stop_busy) && !bad) bad = check_loop("busy parent", 2, PARFOR_SCHEDULE_DYNAMIC);
    return (void *)(intptr_t)bad;
}

int main(void) {
    alarm(120); /* the whole program; each child has its own, shorter alarm */
    for (size_t i = 0; i < N_DATA; i++) {
        data[i] = (int64_t)(i * 2654435761u % 1000003) - 500000;
        data_sum += data[i];
    }
    int bad = check_concurrent("parent before fork");
    for (int round = 0; round < 3 && !bad; round++) {
        /* 1. From the thread that used parfor. */
        bad |= fork_and_check("child of the main thread");
        bad |= check_all("parent after fork");

        /* 2. From another thread, parfor idle. */
        pthread_t t;
        void *r;
        if (pthread_create(&t, NULL, fork_from_thread, "child of another thread") != 0) return 1;
        pthread_join(t, &r);
        bad |= (int)(intptr_t)r;
        bad |= check_all("parent after fork from another thread");

        /* 3. While another thread is running a parfor call. */
        atomic_store(&stop_busy, 0);
        if (pthread_create(&t, NULL, busy_caller, NULL) != 0) return 1;
        for (int k = 0; k < 3; k++) bad |= fork_and_check("child forked during a parfor call");
        atomic_store(&stop_busy, 1);
        pthread_join(t, &r);
        bad |= (int)(intptr_t)r;
        bad |= check_concurrent("parent after fork during a call");
    }
    if (bad) {
        fprintf(stderr, "fork test FAILED\n");
        return 1;
    }
    printf("fork test passed\n");
    return 0;
}
