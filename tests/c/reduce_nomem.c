/* Issue 13, rows 3 and 4: allocations a call cannot make become statuses, never an
 * abort, and nothing is written.
 * - parfor_reduce_with whose identity copy cannot be allocated (1 GiB acc_size
 *   under an address-space limit), whose accumulators cannot (48 MiB: the identity
 *   copy fits, the block accumulator does not), and a 64 GiB acc_size.
 * - parfor_reduce with a length no buffer can have (u8, 2^63 - 1): refused before
 *   anything is sized from it.
 * Prints "reduce_nomem passed". */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "parfor.h"

static int failures;
#define CHECK(c)                                                    \
    do {                                                            \
        if (!(c)) {                                                 \
            fprintf(stderr, "line %d: FAILED: %s\n", __LINE__, #c); \
            failures++;                                             \
        }                                                           \
    } while (0)

static int fold(void *ctx, size_t b, size_t e, void *acc) {
    (void)ctx;
    ((unsigned char *)acc)[0] += (unsigned char)(e - b);
    return 0;
}

static void combine(void *ctx, void *acc, const void *other) {
    (void)ctx;
    ((unsigned char *)acc)[0] += ((const unsigned char *)other)[0];
}

static long vm_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmSize:", 7) == 0) sscanf(line + 7, "%ld", &v);
    if (f) fclose(f);
    return v;
}

static void expect_no_memory(const void *identity, size_t acc_size, const char *what) {
    unsigned char out[16];
    memset(out, 0x5A, sizeof out);
    parfor_status st = parfor_reduce_with(0, 1000, identity, acc_size, NULL, fold, combine, NULL, out);
    if (st != PARFOR_ERR_RUNTIME) fprintf(stderr, "%s: status %d\n", what, (int)st);
    CHECK(st == PARFOR_ERR_RUNTIME);
    CHECK(strstr(parfor_last_error(), "cannot allocate") != NULL);
    for (size_t i = 0; i < sizeof out; i++) CHECK(out[i] == 0x5A);
}

int main(void) {
    /* Row 4: u8 x (2^63 - 1). */
    unsigned char data[64] = {0};
    uint64_t sum = 77;
    parfor_status st = parfor_reduce(data, (size_t)INT64_MAX, PARFOR_U8, PARFOR_SUM, NULL, &sum);
    CHECK(st == PARFOR_ERR_INVALID_ARGUMENT && sum == 77);
    CHECK(strstr(parfor_last_error(), "address space") != NULL);

    /* Identities readable for their whole size: untouched anonymous mappings. */
    size_t gib = (size_t)1 << 30, big = (size_t)48 << 20;
    unsigned char *id1 = mmap(NULL, gib, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    unsigned char *id2 = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (id1 == MAP_FAILED || id2 == MAP_FAILED) return 2;
    /* Warm up: the runtime's own allocations happen before the limit. */
    unsigned char small = 0, out = 0;
    if (parfor_reduce_with(0, 1000, &small, 1, NULL, fold, combine, NULL, &out) != PARFOR_OK || out != (unsigned char)1000) return 3;
    struct rlimit r = {(rlim_t)(vm_kb() + 64 * 1024) * 1024, RLIM_INFINITY};
    if (setrlimit(RLIMIT_AS, &r) != 0) return 4;
    expect_no_memory(id1, gib, "1 GiB identity");
    expect_no_memory(id2, big, "48 MiB accumulators");
    /* 64 GiB: the identity pointer is never read (the copy is refused first). */
    expect_no_memory(id1, (size_t)64 << 30, "64 GiB identity");
    /* Still usable afterwards. */
    out = 0;
    CHECK(parfor_reduce_with(0, 1000, &small, 1, NULL, fold, combine, NULL, &out) == PARFOR_OK && out == (unsigned char)1000);
    if (failures) return 1;
    printf("reduce_nomem passed\n");
    return 0;
}
