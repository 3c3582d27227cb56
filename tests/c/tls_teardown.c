/* Issue 13, row 2: calls from where the calling thread's storage is being torn
 * down, after that thread already had a failure (so that it had a last-error
 * record): a pthread key destructor of a thread that exits, and an atexit handler of
 * the main thread (glibc destroys the main thread's thread-locals before running
 * atexit handlers). Each place makes a failing call (exact status expected), reads
 * parfor_last_error() (never NULL) and makes a successful 2-thread loop and
 * reduction with checked results. Prints "tls_teardown passed" from the atexit
 * handler when all of it held; any abort fails the driving test. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parfor.h"

static atomic_int failures;
static atomic_long total;

static int add(void *ctx, size_t b, size_t e) {
    (void)ctx;
    long s = 0;
    for (size_t i = b; i < e; i++) s += (long)i;
    atomic_fetch_add(&total, s);
    return 0;
}

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "FAILED: %s\n", what);
        atomic_fetch_add(&failures, 1);
    }
}

/* The calls every teardown place makes. */
static void calls(const char *where) {
    char what[128];
    parfor_status st = parfor_for(0, 10, NULL, NULL, NULL);
    snprintf(what, sizeof what, "%s: NULL body gives PARFOR_ERR_NULL_ARGUMENT", where);
    check(st == PARFOR_ERR_NULL_ARGUMENT, what);
    const char *msg = parfor_last_error();
    snprintf(what, sizeof what, "%s: parfor_last_error() is not NULL", where);
    check(msg != NULL, what);
    if (msg) fprintf(stderr, "%s: last error: %s\n", where, msg);
    parfor_options o;
    parfor_options_init(&o);
    o.num_threads = 2;
    atomic_store(&total, 0);
    st = parfor_for(0, 100000, &o, add, NULL);
    snprintf(what, sizeof what, "%s: a 2-thread loop runs every index", where);
    check(st == PARFOR_OK && atomic_load(&total) == 100000L * 99999 / 2, what);
    int64_t data[1000], sum = -1;
    for (int i = 0; i < 1000; i++) data[i] = i;
    st = parfor_reduce(data, 1000, PARFOR_I64, PARFOR_SUM, &o, &sum);
    snprintf(what, sizeof what, "%s: a 2-thread reduction", where);
    check(st == PARFOR_OK && sum == 999 * 1000 / 2, what);
    int64_t untouched = 7;
    st = parfor_reduce(data, 0, PARFOR_I64, PARFOR_MIN, &o, &untouched);
    snprintf(what, sizeof what, "%s: empty MIN gives PARFOR_ERR_EMPTY, output untouched", where);
    check(st == PARFOR_ERR_EMPTY && untouched == 7 && parfor_last_error() != NULL, what);
}

static pthread_key_t key;

static void key_destructor(void *value) {
    (void)value;
    calls("pthread key destructor");
}

static void *thread_main(void *arg) {
    (void)arg;
    /* A failure first, so that this thread has a last-error record to destroy. */
    check(parfor_for(0, 1, NULL, NULL, NULL) == PARFOR_ERR_NULL_ARGUMENT, "thread: first failure");
    pthread_setspecific(key, (void *)1);
    return NULL;
}

static void at_exit(void) {
    calls("atexit handler");
    if (atomic_load(&failures) == 0) printf("tls_teardown passed\n");
    fflush(stdout);
}

int main(void) {
    if (pthread_key_create(&key, key_destructor) != 0) return 2;
    pthread_t t;
    if (pthread_create(&t, NULL, thread_main, NULL) != 0) return 2;
    pthread_join(t, NULL);
    check(parfor_for(0, 1, NULL, NULL, NULL) == PARFOR_ERR_NULL_ARGUMENT, "main: first failure");
    check(strlen(parfor_last_error()) > 0, "main: a message");
    atexit(at_exit);
    return 0;
}
