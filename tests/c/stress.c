/* A C stress test for the sanitizers (driven by tests/sanitizers.rs): several
 * pthreads make mixed calls at once (loops, reductions, user reductions, nested
 * calls from bodies, callbacks that fail, bad arguments) and check every result.
 *
 * Under ThreadSanitizer the library is not instrumented, so TSan cannot see the
 * happens-before edges parfor's own atomics and futexes create. The program states
 * the two edges the header promises, with TSan's annotation interface, and nothing
 * more:
 *   - fork: what the caller wrote before a call is visible to every callback of it
 *     (RELEASE(fork object) before the call, ACQUIRE(fork object) at the start of
 *     each callback);
 *   - join: everything a body or fold did is visible to the caller after the call
 *     returns, and a fold's writes to its accumulator are visible to the combine
 *     that reads it (RELEASE(join object or accumulator) at the end of each
 *     callback, ACQUIRE of it after the call and at the start of a combine).
 * The fork and join objects are distinct, so callbacks of one call are never
 * ordered with each other by the annotations: the library does not order them.
 * TSan then checks the program's own plain, non-atomic accesses against that model:
 * two bodies given overlapping ranges, or a body still running after the call
 * returned, are reported as races. The loop bodies below write their indices with
 * plain stores on purpose.
 *
 * Built with -DINJECT_RACE, every loop body also increments one global counter
 * without synchronisation: tests/sanitizers.rs checks that TSan reports it, which
 * proves that the options it runs TSan with still detect races in callbacks. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parfor.h"

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#endif

#ifdef UNDER_TSAN
#include <sanitizer/tsan_interface.h>
#define ACQUIRE(p) __tsan_acquire((void *)(p))
#define RELEASE(p) __tsan_release((void *)(p))
#else
#define ACQUIRE(p) ((void)(p))
#define RELEASE(p) ((void)(p))
#endif

#define THREADS 6
#define CALLS 1500
#define DATA 40000 /* 320 KB of int64: above the library's serial threshold */

static int64_t data[DATA];

struct rng {
    uint64_t s;
};

static uint64_t next(struct rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t below(struct rng *r, size_t n) {
    return (size_t)(next(r) % n);
}

static void random_options(struct rng *r, parfor_options *o) {
    static const size_t chunks[] = {0, 0, 1, 7, 100};
    parfor_options_init(o);
    o->num_threads = below(r, 5);
    o->schedule = (parfor_schedule)below(r, 4);
    o->chunk = chunks[below(r, 5)];
}

#define FAIL(...)                                  \
    do {                                           \
        fprintf(stderr, __VA_ARGS__);              \
        fprintf(stderr, " (line %d)\n", __LINE__); \
        return 1;                                  \
    } while (0)

/* ---- loops: each index written by exactly one body, with plain stores ---- */

struct loop {
    char fork, join; /* TSan sync objects (see the top comment) */
    size_t begin;
    unsigned *owner; /* per index: 1 + the call's tag, written once */
    unsigned tag;
    size_t fail_at;  /* index whose body returns nonzero, or SIZE_MAX */
    int nested;      /* the body also runs a nested loop and reduction */
    int nested_bad;  /* set (plainly) by a body that saw a nested call misbehave */
};

static int inner_body(void *ctx, size_t begin, size_t end);

#ifdef INJECT_RACE
static long racy_counter;
#endif

static int loop_body(void *ctx, size_t begin, size_t end) {
    struct loop *l = ctx;
    ACQUIRE(&l->fork);
#ifdef INJECT_RACE
    racy_counter++;
#endif
    int rc = 0;
    for (size_t i = begin; i < end; i++) {
        if (l->owner[i - l->begin] != 0) l->nested_bad = 1; /* ran twice: also a race */
        l->owner[i - l->begin] = l->tag;
        if (i == l->fail_at) {
            rc = 5;
            break;
        }
    }
    if (l->nested && rc == 0) {
        /* Nested calls run inline on this thread: plain locals suffice. */
        unsigned inner[64] = {0};
        struct loop in = {0, 0, 0, inner, 9, SIZE_MAX, 0, 0};
        RELEASE(&in.fork);
        if (parfor_for(0, 64, NULL, inner_body, &in) != PARFOR_OK) l->nested_bad = 1;
        ACQUIRE(&in.join);
        for (int k = 0; k < 64; k++)
            if (inner[k] != 9) l->nested_bad = 1;
        int64_t s = 0;
        if (parfor_reduce(data, 5000, PARFOR_I64, PARFOR_SUM, NULL, &s) != PARFOR_OK) l->nested_bad = 1;
        if (s != (int64_t)5000 * 4999 / 2) l->nested_bad = 1;
        if (parfor_num_threads() != 1) l->nested_bad = 1;
    }
    RELEASE(&l->join);
    return rc;
}

static int inner_body(void *ctx, size_t begin, size_t end) {
    struct loop *l = ctx;
    ACQUIRE(&l->fork);
    for (size_t i = begin; i < end; i++) l->owner[i] = l->tag;
    RELEASE(&l->join);
    return 0;
}

static int check_loop(struct rng *r, int nested) {
    size_t n = nested ? 1 + below(r, 8) : below(r, 5000);
    size_t begin = below(r, 1000000);
    struct loop l = {0, 0, begin, calloc(n + 1, sizeof(unsigned)), (unsigned)(1 + below(r, 1000)), SIZE_MAX, nested, 0};
    if (!l.owner) FAIL("out of memory");
    parfor_options o;
    random_options(r, &o);
    RELEASE(&l.fork);
    parfor_status s = parfor_for(begin, begin + n, &o, loop_body, &l);
    ACQUIRE(&l.join);
    if (s != PARFOR_OK) FAIL("parfor_for: %d %s", (int)s, parfor_last_error());
    for (size_t i = 0; i < n; i++)
        if (l.owner[i] != l.tag) FAIL("index %zu not run", begin + i);
    if (l.nested_bad) FAIL("an index ran twice or a nested call failed");
    free(l.owner);
    return 0;
}

static int check_failing_loop(struct rng *r) {
    size_t n = 1 + below(r, 5000);
    struct loop l = {0, 0, 0, calloc(n, sizeof(unsigned)), 3, below(r, n), 0, 0};
    if (!l.owner) FAIL("out of memory");
    parfor_options o;
    random_options(r, &o);
    RELEASE(&l.fork);
    parfor_status s = parfor_for(0, n, &o, loop_body, &l);
    ACQUIRE(&l.join);
    if (s != PARFOR_ERR_CALLBACK) FAIL("failing body gave %d", (int)s);
    if (l.owner[l.fail_at] != 3) FAIL("the failing index did not run");
    if (strstr(parfor_last_error(), "returned 5") == NULL) FAIL("message: %s", parfor_last_error());
    free(l.owner);
    return 0;
}

/* ---- built-in reductions ---- */

static int check_reduce(struct rng *r) {
    size_t n = below(r, 10) == 0 ? DATA : below(r, 3000);
    parfor_options o;
    random_options(r, &o);
    int64_t want_sum = 0, want_xor = 0, want_max = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        want_sum += data[i];
        want_xor ^= data[i];
        if (data[i] > want_max) want_max = data[i];
    }
    int64_t out = -1;
    parfor_status s = parfor_reduce(data, n, PARFOR_I64, PARFOR_SUM, &o, &out);
    if (s != PARFOR_OK || out != want_sum) FAIL("sum of %zu: %d %lld", n, (int)s, (long long)out);
    s = parfor_reduce(data, n, PARFOR_I64, PARFOR_BIT_XOR, &o, &out);
    if (s != PARFOR_OK || out != want_xor) FAIL("xor of %zu", n);
    out = 42;
    s = parfor_reduce(data, n, PARFOR_I64, PARFOR_MAX, &o, &out);
    if (n == 0 ? (s != PARFOR_ERR_EMPTY || out != 42) : (s != PARFOR_OK || out != want_max)) FAIL("max of %zu", n);
    size_t at = 0;
    s = parfor_argmax(data, n, PARFOR_I64, &o, &at);
    if (n > 0 && (s != PARFOR_OK || data[at] != want_max)) FAIL("argmax of %zu", n);
    return 0;
}

/* ---- user reductions: an ordered span, as tests/stress.rs ---- */

struct span {
    uint64_t lo, hi, count, sum, broken;
};

struct fold_ctx {
    size_t fail_at;
};

static int span_fold(void *ctx, size_t begin, size_t end, void *acc) {
    struct fold_ctx *c = ctx;
    struct span *a = acc;
    ACQUIRE(c);
    if (c->fail_at >= begin && c->fail_at < end) {
        a->count = 777; /* half-updated, as a real failing fold would leave it */
        RELEASE(acc);
        return -1;
    }
    if (a->count == 0)
        a->lo = begin;
    else if (a->hi != begin)
        a->broken = 1;
    a->hi = end;
    a->count += end - begin;
    for (size_t i = begin; i < end; i++) a->sum += (uint64_t)i * i;
    RELEASE(acc);
    return 0;
}

static void span_combine(void *ctx, void *acc, const void *other) {
    (void)ctx;
    ACQUIRE(acc);
    ACQUIRE(other);
    struct span *a = acc;
    const struct span *b = other;
    if (a->count == 0) {
        *a = *b;
    } else if (b->count != 0) {
        if (a->hi != b->lo) a->broken = 1;
        a->hi = b->hi;
        a->count += b->count;
        a->sum += b->sum;
        a->broken |= b->broken;
    }
    RELEASE(acc);
}

static int check_reduce_with(struct rng *r, int failing) {
    size_t n = below(r, 20000);
    if (failing && n == 0) n = 1;
    struct fold_ctx c = {failing ? below(r, n) : SIZE_MAX};
    struct span id = {0, 0, 0, 0, 0}, sentinel = {1, 2, 3, 4, 5}, out = sentinel;
    parfor_options o;
    random_options(r, &o);
    RELEASE(&c);
    parfor_status s = parfor_reduce_with(0, n, &id, sizeof id, &o, span_fold, span_combine, &c, &out);
    if (failing) {
        if (s != PARFOR_ERR_CALLBACK || memcmp(&out, &sentinel, sizeof out) != 0) FAIL("failing fold: %d", (int)s);
        return 0;
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += (uint64_t)i * i;
    if (s != PARFOR_OK) FAIL("reduce_with: %d %s", (int)s, parfor_last_error());
    if (n > 0 && (out.lo != 0 || out.hi != n || out.count != n || out.sum != sum || out.broken))
        FAIL("reduce_with over %zu: [%llu, %llu) count %llu broken %llu", n, (unsigned long long)out.lo,
             (unsigned long long)out.hi, (unsigned long long)out.count, (unsigned long long)out.broken);
    return 0;
}

/* ---- bad arguments ---- */

static int never(void *ctx, size_t b, size_t e) {
    (void)ctx;
    (void)b;
    (void)e;
    abort(); /* a call that fails validation must not run its body */
}

static int check_bad_arguments(struct rng *r) {
    int64_t out = 99;
    parfor_options small, bad_sched;
    parfor_options_init(&small);
    small.size = 1;
    parfor_options_init(&bad_sched);
    bad_sched.schedule = (parfor_schedule)(4 + below(r, 100));
    const char *misaligned = (const char *)data + 1 + below(r, 7);
    if (parfor_reduce(NULL, 4, PARFOR_I64, PARFOR_SUM, NULL, &out) != PARFOR_ERR_NULL_ARGUMENT) FAIL("NULL data");
    if (parfor_reduce(data, 4, (parfor_dtype)77, PARFOR_SUM, NULL, &out) != PARFOR_ERR_INVALID_ARGUMENT) FAIL("dtype");
    if (parfor_reduce(data, 4, PARFOR_I64, (parfor_op)-3, NULL, &out) != PARFOR_ERR_INVALID_ARGUMENT) FAIL("op");
    if (parfor_reduce(misaligned, 4, PARFOR_I64, PARFOR_SUM, NULL, &out) != PARFOR_ERR_MISALIGNED) FAIL("misaligned");
    if (parfor_reduce(data, 4, PARFOR_I64, PARFOR_SUM, &small, &out) != PARFOR_ERR_INVALID_ARGUMENT) FAIL("size");
    if (parfor_reduce(data, SIZE_MAX / 4, PARFOR_I64, PARFOR_SUM, NULL, &out) != PARFOR_ERR_INVALID_ARGUMENT)
        FAIL("overflow");
    if (parfor_for(0, 10, &bad_sched, never, NULL) != PARFOR_ERR_INVALID_ARGUMENT) FAIL("schedule");
    if (parfor_for(10, 0, NULL, never, NULL) != PARFOR_ERR_INVALID_ARGUMENT) FAIL("range");
    if (parfor_for(0, 10, NULL, NULL, NULL) != PARFOR_ERR_NULL_ARGUMENT) FAIL("NULL body");
    if (parfor_reduce_with(0, 10, &out, 0, NULL, span_fold, span_combine, NULL, &out) != PARFOR_ERR_INVALID_ARGUMENT)
        FAIL("acc_size 0");
    if (out != 99) FAIL("*out written by a failing call");
    if (parfor_last_error()[0] == '\0') FAIL("no message");
    return 0;
}

static void *app_thread(void *arg) {
    struct rng r = {(uint64_t)(uintptr_t)arg * 7919 + 1};
    for (int call = 0; call < CALLS; call++) {
        int bad;
        switch (below(&r, 10)) {
        case 0:
        case 1:
        case 2: bad = check_loop(&r, 0); break;
        case 3: bad = check_loop(&r, 1); break;
        case 4: bad = check_failing_loop(&r); break;
        case 5:
        case 6: bad = check_reduce(&r); break;
        case 7: bad = check_reduce_with(&r, 0); break;
        case 8: bad = check_reduce_with(&r, 1); break;
        default: bad = check_bad_arguments(&r); break;
        }
        if (bad) {
            fprintf(stderr, "thread %zu, call %d failed\n", (size_t)(uintptr_t)arg, call);
            return (void *)1;
        }
    }
    return NULL;
}

int main(void) {
    for (size_t i = 0; i < DATA; i++) data[i] = (int64_t)i;
    pthread_t t[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, app_thread, (void *)i) != 0) return 1;
    int bad = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad |= r != NULL;
    }
    if (bad) return 1;
    printf("stress.c passed\n");
    return 0;
}
