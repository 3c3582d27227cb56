/* Issue 13, rows 3 and 4: allocations a call cannot make become statuses, never an
 * abort, and nothing is written.
 * - parfor_reduce_with whose block accumulators cannot be allocated under an
 *   address-space limit: one block of 1 GiB, two of 24 MiB (one would fit), and a
 *   64 GiB acc_size.
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

/* `out` has room for acc_size bytes (so that a call that wrongly succeeds is a
 * failed check, not a crash); only its first 16 bytes are looked at. */
static void expect_no_memory(const void *identity, size_t acc_size, unsigned char *out, const char *what) {
    memset(out, 0x5A, 16);
    parfor_status st = parfor_reduce_with(0, 1000, identity, acc_size, NULL, fold, combine, NULL, out);
    if (st != PARFOR_OK && st != PARFOR_ERR_RUNTIME) fprintf(stderr, "%s: status %d\n", what, (int)st);
    if (st == PARFOR_OK) fprintf(stderr, "%s: succeeded\n", what);
    CHECK(st == PARFOR_ERR_RUNTIME);
    CHECK(strstr(parfor_last_error(), "cannot allocate") != NULL);
    for (size_t i = 0; i < 16; i++) CHECK(out[i] == 0x5A);
}

int main(void) {
    /* Row 4: u8 x (2^63 - 1). */
    unsigned char data[64] = {0};
    uint64_t sum = 77;
    parfor_status st = parfor_reduce(data, (size_t)INT64_MAX, PARFOR_U8, PARFOR_SUM, NULL, &sum);
    CHECK(st == PARFOR_ERR_INVALID_ARGUMENT && sum == 77);
    CHECK(strstr(parfor_last_error(), "address space") != NULL);

    /* Identities readable for their whole size, and an output with room for the
     * largest: untouched anonymous mappings. */
    size_t gib = (size_t)1 << 30, mid = (size_t)24 << 20;
    unsigned char *id1 = mmap(NULL, gib, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    unsigned char *id2 = mmap(NULL, mid, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *dst = mmap(NULL, gib, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (id1 == MAP_FAILED || id2 == MAP_FAILED || dst == MAP_FAILED) return 2;
    /* Warm up: the runtime's own allocations happen before the limit. */
    unsigned char small = 0, out = 0;
    if (parfor_reduce_with(0, 1000, &small, 1, NULL, fold, combine, NULL, &out) != PARFOR_OK || out != (unsigned char)1000) return 3;
    struct rlimit r = {(rlim_t)(vm_kb() + 32 * 1024) * 1024, RLIM_INFINITY};
    if (setrlimit(RLIMIT_AS, &r) != 0) return 4;
    /* One block of 1 GiB. */
    expect_no_memory(id1, gib, dst, "1 GiB accumulator");
    /* Two blocks of 24 MiB (the 64 MiB bound on all accumulators allows two): one
     * would fit under the limit, the two do not. */
    expect_no_memory(id2, mid, dst, "2 x 24 MiB accumulators");
    /* 64 GiB: the identity pointer is never read (the allocation is refused first). */
    expect_no_memory(id1, (size_t)64 << 30, dst, "64 GiB accumulator");
    /* Still usable afterwards. */
    out = 0;
    CHECK(parfor_reduce_with(0, 1000, &small, 1, NULL, fold, combine, NULL, &out) == PARFOR_OK && out == (unsigned char)1000);
    if (failures) return 1;
    printf("reduce_nomem passed\n");
    return 0;
}
