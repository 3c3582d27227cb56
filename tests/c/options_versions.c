/* Issue 13, options versioning: a program built against an older header (its
 * struct is the first published layout, PARFOR_OPTIONS_MIN_SIZE bytes) or a newer
 * one (an extra field) works with this library: parfor_options_init and
 * parfor_options_init_size write no byte past the caller's struct, calls accept any
 * size from the first published one up and read only the fields it covers, and a
 * smaller size is refused with its exact status and message, nothing written.
 * Prints "options_versions passed". */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "parfor.h"

/* The first published header's struct, as an old program compiled it. */
typedef struct {
    size_t size;
    size_t num_threads;
    parfor_schedule schedule;
    size_t chunk;
} options_v1;

/* A newer header's struct: one more field this library does not know. */
typedef struct {
    size_t size;
    size_t num_threads;
    parfor_schedule schedule;
    size_t chunk;
    size_t future_field;
} options_v2;

static atomic_long total;

static int add(void *ctx, size_t b, size_t e) {
    (void)ctx;
    long s = 0;
    for (size_t i = b; i < e; i++) s += (long)i;
    atomic_fetch_add(&total, s);
    return 0;
}

static int failures;
#define CHECK(c)                                                  \
    do {                                                          \
        if (!(c)) {                                               \
            fprintf(stderr, "line %d: FAILED: %s\n", __LINE__, #c); \
            failures++;                                           \
        }                                                         \
    } while (0)

static int runs(const parfor_options *o) {
    atomic_store(&total, 0);
    return parfor_for(0, 10000, o, add, NULL) == PARFOR_OK && atomic_load(&total) == 10000L * 9999 / 2;
}

int main(void) {
    CHECK(sizeof(options_v1) == PARFOR_OPTIONS_MIN_SIZE);
    /* Old program, old init: the byte after its struct is never written. */
    struct {
        options_v1 o;
        unsigned char canary[64];
    } old;
    memset(&old, 0xAB, sizeof old);
    parfor_options_init((parfor_options *)&old.o);
    for (size_t i = 0; i < sizeof old.canary; i++) CHECK(old.canary[i] == 0xAB);
    CHECK(old.o.size == PARFOR_OPTIONS_MIN_SIZE && old.o.num_threads == 0 && old.o.chunk == 0);
    old.o.num_threads = 2;
    CHECK(runs((parfor_options *)&old.o));
    /* Old program, sized init. */
    memset(&old, 0xCD, sizeof old);
    CHECK(parfor_options_init_size((parfor_options *)&old.o, sizeof old.o) == PARFOR_OK);
    for (size_t i = 0; i < sizeof old.canary; i++) CHECK(old.canary[i] == 0xCD);
    CHECK(old.o.size == sizeof old.o && old.o.schedule == PARFOR_SCHEDULE_AUTO);
    old.o.schedule = PARFOR_SCHEDULE_DYNAMIC;
    old.o.chunk = 7;
    CHECK(runs((parfor_options *)&old.o));
    /* Newer program: its extra field is zeroed by init, and not read by calls. */
    struct {
        options_v2 o;
        unsigned char canary[64];
    } newer;
    memset(&newer, 0xEF, sizeof newer);
    CHECK(parfor_options_init_size((parfor_options *)&newer.o, sizeof newer.o) == PARFOR_OK);
    for (size_t i = 0; i < sizeof newer.canary; i++) CHECK(newer.canary[i] == 0xEF);
    CHECK(newer.o.size == sizeof newer.o && newer.o.future_field == 0);
    newer.o.future_field = (size_t)-1;
    newer.o.num_threads = 3;
    CHECK(runs((parfor_options *)&newer.o));
    /* Too small: refused, nothing written. */
    memset(&old, 0x11, sizeof old);
    CHECK(parfor_options_init_size((parfor_options *)&old.o, PARFOR_OPTIONS_MIN_SIZE - 8) ==
          PARFOR_ERR_INVALID_ARGUMENT);
    CHECK(strstr(parfor_last_error(), "PARFOR_OPTIONS_MIN_SIZE") != NULL);
    CHECK(((unsigned char *)&old)[0] == 0x11 && ((unsigned char *)&old)[sizeof old - 1] == 0x11);
    CHECK(parfor_options_init_size(NULL, sizeof(parfor_options)) == PARFOR_ERR_NULL_ARGUMENT);
    parfor_options_init_size((parfor_options *)&old.o, sizeof old.o);
    old.o.size = 16;
    atomic_store(&total, -5);
    CHECK(parfor_for(0, 10, (parfor_options *)&old.o, add, NULL) == PARFOR_ERR_INVALID_ARGUMENT);
    CHECK(atomic_load(&total) == -5);
    CHECK(strstr(parfor_last_error(), "opts->size is 16") != NULL);
    if (failures) return 1;
    printf("options_versions passed\n");
    return 0;
}
