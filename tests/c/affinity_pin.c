/* Issue 13, row 8: the application pins parfor's worker threads (found by name in
 * /proc/self/task) from another thread while calls run: each round it gives them
 * every CPU back, then narrows them to one CPU while calls run; after each round every
 * worker's mask must be exactly what the application last set: parfor never widens
 * a mask the application narrowed. Needs two CPUs or more (else prints a skip line).
 * Prints "affinity_pin passed". */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "parfor.h"

#define ROUNDS 150
#define CALLS 40
#define MAXT 64

static int worker_tids(pid_t *tids) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < MAXT) {
        if (e->d_name[0] == '.') continue;
        char path[300], comm[64] = {0};
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(comm, sizeof comm, f) && strncmp(comm, "parfor-", 7) == 0) tids[n++] = atoi(e->d_name);
        fclose(f);
    }
    if (d) closedir(d);
    return n;
}

static atomic_int round_cpu = -1;
static atomic_int stop;
/* Handshake: main changes round_cpu, then bumps `seq`; the pinner reads `seq`, then
 * round_cpu, makes its pass and acknowledges `seq`. An acknowledged `seq` read after
 * round_cpu became -1 means every pinning pass is over. */
static atomic_int seq, ack, passes;

/* With `wait`, returns once the pinner has made a pass that saw `cpu`. */
static void set_round(int cpu, int wait) {
    atomic_store(&round_cpu, cpu);
    int s = atomic_fetch_add(&seq, 1) + 1;
    while (wait && atomic_load(&ack) != s) sched_yield();
}

static cpu_set_t all;

static void *pinner(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        int s = atomic_load(&seq);
        int cpu = atomic_load(&round_cpu);
        if (cpu != -1) {
            pid_t tids[MAXT];
            int n = worker_tids(tids);
            cpu_set_t set = all;
            if (cpu >= 0) {
                CPU_ZERO(&set);
                CPU_SET(cpu, &set);
            }
            for (int i = 0; i < n; i++) sched_setaffinity(tids[i], sizeof set, &set);
        }
        atomic_store(&ack, s);
        atomic_fetch_add(&passes, 1);
        sched_yield();
    }
    return NULL;
}

static int nop(void *ctx, size_t b, size_t e) {
    (void)ctx;
    volatile size_t x = 0;
    for (size_t i = b; i < e; i++) x += i;
    return 0;
}

int main(void) {
    sched_getaffinity(0, sizeof all, &all);
    int cpus[2], n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
        if (CPU_ISSET(c, &all)) cpus[n++] = c;
    if (n < 2) {
        printf("affinity_pin skipped: one CPU\n");
        return 0;
    }
    parfor_options o;
    parfor_options_init(&o);
    o.num_threads = 2;
    if (parfor_for(0, 1000, &o, nop, NULL) != PARFOR_OK) return 2;
    pthread_t p;
    pthread_create(&p, NULL, pinner, NULL);
    int widened = 0;
    for (int r = 0; r < ROUNDS; r++) {
        int cpu = cpus[r % 2];
        /* The application gives the workers every CPU back, then, while calls
         * run (and parfor's threads may be moving), narrows them to one. */
        set_round(-2, 1);
        set_round(cpu, 0);
        /* Calls while the pinner pins: at least CALLS, and over two more passes. */
        int first = atomic_load(&passes);
        for (int c = 0; c < CALLS || atomic_load(&passes) < first + 2; c++) {
            if (parfor_for(0, 2000, &o, nop, NULL) != PARFOR_OK) return 3;
            if (c % 20 == 10) usleep(6000); /* past the 5 ms spin: the workers park, and a woken worker often lands on its leader's CPU */
        }
        /* Every pinning pass of this round is over: each worker was last set to `cpu`. */
        set_round(-1, 1);
        pid_t tids[MAXT];
        int k = worker_tids(tids);
        for (int i = 0; i < k; i++) {
            cpu_set_t s;
            if (sched_getaffinity(tids[i], sizeof s, &s) != 0) continue;
            if (CPU_COUNT(&s) != 1 || !CPU_ISSET(cpu, &s)) {
                widened++;
                break;
            }
        }
    }
    atomic_store(&stop, 1);
    pthread_join(p, NULL);
    if (widened) {
        fprintf(stderr, "a worker's mask was widened in %d of %d rounds\n", widened, ROUNDS);
        return 1;
    }
    printf("affinity_pin passed\n");
    return 0;
}
