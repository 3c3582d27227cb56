/* Issue 13, row 5: worker threads cannot be created. After a first call has started
 * one worker, the address-space limit is lowered to just above what the process
 * maps now, so that no further thread stack (an mmap of megabytes) fits. Then calls
 * asking for 8 threads must run on the threads that exist, with correct results, at
 * most one message on stderr, and no memory growth over many calls (before: every
 * parfor_for failed, and each failed call leaked its worker record).
 * Prints "thread_limit passed". */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "parfor.h"

#define CALLS 20000
#define N 1000

static atomic_long total;

static int add(void *ctx, size_t b, size_t e) {
    (void)ctx;
    long s = 0;
    for (size_t i = b; i < e; i++) s += (long)i;
    atomic_fetch_add(&total, s);
    return 0;
}

/* A field of /proc/self/status, in kB. */
static long status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0) sscanf(line + n, "%ld", &v);
    if (f) fclose(f);
    return v;
}

static int one_round(parfor_options *o) {
    atomic_store(&total, 0);
    parfor_status st = parfor_for(0, N, o, add, NULL);
    if (st != PARFOR_OK) {
        fprintf(stderr, "parfor_for: status %d: %s\n", (int)st, parfor_last_error());
        return 1;
    }
    if (atomic_load(&total) != (long)N * (N - 1) / 2) return 1;
    int64_t data[N], sum = 0;
    for (int i = 0; i < N; i++) data[i] = i;
    st = parfor_reduce(data, N, PARFOR_I64, PARFOR_SUM, o, &sum);
    if (st != PARFOR_OK || sum != (int64_t)N * (N - 1) / 2) {
        fprintf(stderr, "parfor_reduce: status %d, sum %lld\n", (int)st, (long long)sum);
        return 1;
    }
    return 0;
}

int main(void) {
    parfor_options o;
    parfor_options_init(&o);
    o.num_threads = 2;
    if (one_round(&o)) return 2;
    o.num_threads = 8;
    /* Warm the allocator's arenas with the sizes the calls use. */
    long vm = status_kb("VmSize:");
    struct rlimit r = {(rlim_t)(vm + 1024) * 1024, RLIM_INFINITY};
    if (setrlimit(RLIMIT_AS, &r) != 0) return 3;
    for (int i = 0; i < 100; i++)
        if (one_round(&o)) return 4;
    long rss0 = status_kb("VmRSS:"), vm0 = status_kb("VmSize:");
    for (int i = 0; i < CALLS; i++)
        if (one_round(&o)) {
            fprintf(stderr, "call %d failed\n", i);
            return 5;
        }
    long rss1 = status_kb("VmRSS:"), vm1 = status_kb("VmSize:");
    fprintf(stderr, "RSS %ld -> %ld kB, VmSize %ld -> %ld kB\n", rss0, rss1, vm0, vm1);
    /* 2 x 20000 calls leaking even 100 bytes each would add 4000 kB. */
    if (rss1 - rss0 > 1024) return 6;
    printf("thread_limit passed\n");
    return 0;
}
