/* Issue 13, row 1: fork() while another thread makes the process's first parfor
 * call. Each round is a fresh process P (forked from this driver before it ever
 * called parfor): P starts a thread that makes P's first call, and P's main thread
 * forks children as fast as it can meanwhile, so that some fork lands while the
 * other thread initialises the runtime (reading the configuration, registering the
 * fork handler, creating the team). Every child makes a call, checks its result and
 * exits; a child that hangs is killed by alarm() and counted.
 * Prints "fork_first_call passed" when every child of every round succeeded. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "parfor.h"

#define ROUNDS 60
#define CHILDREN 12
#define N 10000

static atomic_long total;

static int add(void *ctx, size_t b, size_t e) {
    (void)ctx;
    long s = 0;
    for (size_t i = b; i < e; i++) s += (long)i;
    atomic_fetch_add(&total, s);
    return 0;
}

static int check_call(void) {
    atomic_store(&total, 0);
    parfor_options o;
    parfor_options_init(&o);
    o.num_threads = 2;
    if (parfor_for(0, N, &o, add, NULL) != PARFOR_OK) return 1;
    return atomic_load(&total) == (long)N * (N - 1) / 2 ? 0 : 2;
}

static void *first_call(void *arg) {
    (void)arg;
    return (void *)(long)check_call();
}

/* One round in a fresh process: 0 when every child succeeded. */
static int round_in_fresh_process(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, first_call, NULL) != 0) return 10;
    pid_t kids[CHILDREN];
    for (int i = 0; i < CHILDREN; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            alarm(10);
            _exit(check_call());
        }
    }
    int bad = 0;
    for (int i = 0; i < CHILDREN; i++) {
        int st;
        if (kids[i] < 0 || waitpid(kids[i], &st, 0) != kids[i]) {
            bad = 11;
            continue;
        }
        if (WIFSIGNALED(st)) {
            fprintf(stderr, "child %d: killed by signal %d (%s)\n", i, WTERMSIG(st),
                    WTERMSIG(st) == SIGALRM ? "hung" : "crashed");
            bad = 12;
        } else if (WEXITSTATUS(st) != 0) {
            fprintf(stderr, "child %d: exit %d\n", i, WEXITSTATUS(st));
            bad = 13;
        }
    }
    void *r;
    pthread_join(t, &r);
    if (r != NULL) bad = 14;
    return bad;
}

int main(void) {
    int failed = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pid_t p = fork();
        if (p == 0) _exit(round_in_fresh_process());
        int st;
        if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "round %d failed\n", round);
            failed++;
        }
    }
    if (failed) {
        fprintf(stderr, "%d of %d rounds failed\n", failed, ROUNDS);
        return 1;
    }
    printf("fork_first_call passed\n");
    return 0;
}
