/* reduce: every built-in operator of parfor_reduce on every dtype, plus parfor_dot,
 * parfor_argmin and parfor_argmax, each checked against a serial loop in this file.
 *
 * Integers are checked exactly. The reference does all integer arithmetic on the
 * element's bits in uint64_t masked to the element width, which is what two's
 * complement wrap-around means, and so needs no signed overflow (undefined in C).
 * Floats are checked against a long double reference within the worst-case bound
 * of any summation order, and bitwise against the one-thread result, since parfor
 * promises the same bits for every team size and schedule.
 *
 * Build (from the repository root, after `cargo build --release`):
 *   $ cc -std=c99 -O2 -Iinclude c_examples/reduce.c -Ltarget/release -lparfor \
 *       -Wl,-rpath,$PWD/target/release -o reduce
 *
 * Usage: reduce [n]   (n elements per buffer; the default is large enough for
 * every dtype to be reduced by the whole team, not the calling thread alone)
 * Exit status: 0 when every check passes, 1 otherwise. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parfor.h"

/* 2^18 + 3: 256 KiB of uint8_t is above the size parfor splits across the team, and
 * the odd length leaves a short last block. */
#define DEFAULT_N 262147u

#define NUM_DTYPES 10
#define NUM_OPS 9
#define NUM_DATASETS 3
#define NUM_OPTIONS 3

static const char *const dtype_names[NUM_DTYPES] = {
    "float", "double", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"};
static const size_t dtype_sizes[NUM_DTYPES] = {4, 8, 1, 2, 4, 8, 1, 2, 4, 8};
static const parfor_op ops[NUM_OPS] = {PARFOR_SUM,     PARFOR_PROD,    PARFOR_MIN,
                                       PARFOR_MAX,     PARFOR_BIT_AND, PARFOR_BIT_OR,
                                       PARFOR_BIT_XOR, PARFOR_LOGICAL_AND, PARFOR_LOGICAL_OR};
static const char *const op_names[NUM_OPS] = {"SUM",     "PROD",   "MIN",
                                              "MAX",     "BIT_AND", "BIT_OR",
                                              "BIT_XOR", "LOGICAL_AND", "LOGICAL_OR"};
static const char *const dataset_names[NUM_DATASETS] = {"dense", "sparse", "zeros"};

static unsigned long failures;

static int is_float(parfor_dtype d) { return d == PARFOR_F32 || d == PARFOR_F64; }

static int is_signed_int(parfor_dtype d) {
    return d == PARFOR_I8 || d == PARFOR_I16 || d == PARFOR_I32 || d == PARFOR_I64;
}

/* The bits of an element of width w live in the low 8w bits. */
static uint64_t width_mask(parfor_dtype d) {
    size_t bits = 8 * dtype_sizes[d];
    return bits == 64 ? ~(uint64_t)0 : (((uint64_t)1 << bits) - 1);
}

static uint64_t sign_bit(parfor_dtype d) { return (uint64_t)1 << (8 * dtype_sizes[d] - 1); }

/* Element i of an integer buffer as its bits, zero-extended. */
static uint64_t get_bits(const void *buf, parfor_dtype d, size_t i) {
    const unsigned char *p = (const unsigned char *)buf + i * dtype_sizes[d];
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    switch (dtype_sizes[d]) {
    case 1: memcpy(&u8, p, 1); return u8;
    case 2: memcpy(&u16, p, 2); return u16;
    case 4: memcpy(&u32, p, 4); return u32;
    default: memcpy(&u64, p, 8); return u64;
    }
}

/* Stores the low bits of `bits` as element i. The signed types are two's complement
 * (C99 7.18.1.1), so their bit pattern is that of the unsigned type of the same width. */
static void set_bits(void *buf, parfor_dtype d, size_t i, uint64_t bits) {
    unsigned char *p = (unsigned char *)buf + i * dtype_sizes[d];
    uint8_t u8 = (uint8_t)bits;
    uint16_t u16 = (uint16_t)bits;
    uint32_t u32 = (uint32_t)bits;
    switch (dtype_sizes[d]) {
    case 1: memcpy(p, &u8, 1); break;
    case 2: memcpy(p, &u16, 2); break;
    case 4: memcpy(p, &u32, 4); break;
    default: memcpy(p, &bits, 8); break;
    }
}

/* A key whose unsigned order is the element's numeric order: flipping the sign bit
 * maps two's complement order onto unsigned order. */
static uint64_t order_key(parfor_dtype d, uint64_t bits) {
    return is_signed_int(d) ? bits ^ sign_bit(d) : bits;
}

static long double get_float(const void *buf, parfor_dtype d, size_t i) {
    return d == PARFOR_F32 ? (long double)((const float *)buf)[i]
                           : (long double)((const double *)buf)[i];
}

static void set_float(void *buf, parfor_dtype d, size_t i, double v) {
    if (d == PARFOR_F32) {
        ((float *)buf)[i] = (float)v;
    } else {
        ((double *)buf)[i] = v;
    }
}

/* xorshift64*: a fixed, portable sequence, so every run checks the same data. */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t next_random(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Du;
}

/* dense: every element nonzero. Integers are odd, so their product stays odd and
 * does not collapse to 0 after a few dozen even factors; they span the full width,
 * so SUM and PROD wrap. Floats are +-(1 + k/2^16) with |k| <= 256: the product of
 * 2^18 of them neither overflows nor underflows, and the coarse grid gives ties for
 * argmin/argmax. sparse: every 997th element is nonzero, so LOGICAL_AND is 0 and
 * MIN/MAX meet zeros. zeros: all +0. */
static void fill(void *buf, parfor_dtype d, size_t n, int dataset) {
    size_t i;
    for (i = 0; i < n; i++) {
        uint64_t r = next_random();
        int nonzero = dataset == 0 || (dataset == 1 && i % 997 == 0);
        if (is_float(d)) {
            double k = (double)(long)(r % 513) - 256.0;
            double sign = (r >> 32) & 1 ? -1.0 : 1.0;
            set_float(buf, d, i, nonzero ? sign * (1.0 + k / 65536.0) : 0.0);
        } else {
            set_bits(buf, d, i, nonzero ? (r | 1) : 0);
        }
    }
}

/* The serial integer reference for `op` over n elements, as bits of the dtype. */
static uint64_t int_reference(const void *buf, parfor_dtype d, size_t n, parfor_op op) {
    uint64_t mask = width_mask(d);
    uint64_t acc;
    size_t i;
    switch (op) {
    case PARFOR_PROD: acc = 1; break;
    case PARFOR_BIT_AND: acc = mask; break;
    case PARFOR_LOGICAL_AND: acc = 1; break;
    case PARFOR_MIN: case PARFOR_MAX: acc = get_bits(buf, d, 0); break;
    default: acc = 0; break;
    }
    for (i = 0; i < n; i++) {
        uint64_t x = get_bits(buf, d, i);
        switch (op) {
        case PARFOR_SUM: acc = (acc + x) & mask; break;
        case PARFOR_PROD: acc = (acc * x) & mask; break;
        case PARFOR_MIN: if (order_key(d, x) < order_key(d, acc)) acc = x; break;
        case PARFOR_MAX: if (order_key(d, x) > order_key(d, acc)) acc = x; break;
        case PARFOR_BIT_AND: acc &= x; break;
        case PARFOR_BIT_OR: acc |= x; break;
        case PARFOR_BIT_XOR: acc ^= x; break;
        case PARFOR_LOGICAL_AND: acc = acc && x != 0; break;
        case PARFOR_LOGICAL_OR: acc = acc || x != 0; break;
        default: break;
        }
    }
    return acc;
}

/* gamma_k = k u / (1 - k u) (Higham, Accuracy and Stability of Numerical Algorithms,
 * section 3.1): the relative error bound of k roundings with unit roundoff u. */
static long double gamma_k(size_t k, long double u) {
    long double ku = (long double)k * u;
    return ku < 1.0L ? ku / (1.0L - ku) : INFINITY;
}

/* Unit roundoff of the dtype, and of the long double reference. */
static long double unit_roundoff(parfor_dtype d) {
    return d == PARFOR_F32 ? FLT_EPSILON / 2.0L : DBL_EPSILON / 2.0L;
}
#define LDBL_U (LDBL_EPSILON / 2.0L)

/* Checks a float SUM or PROD result against the long double reference. The bound is
 * the worst case over every evaluation order: for a sum of n terms, gamma_{n-1} times
 * the sum of magnitudes (Higham 4.2); for a product, gamma_{n-1} times |product|
 * (Higham 3.1). The reference itself is within the same bound with the long double
 * roundoff, which is added. */
static int float_close(long double got, long double ref, long double scale, size_t n,
                       parfor_dtype d) {
    size_t k = n > 0 ? n - 1 : 0;
    long double bound = (gamma_k(k, unit_roundoff(d)) + gamma_k(k, LDBL_U)) * scale;
    return fabsl(got - ref) <= bound;
}

/* The serial float reference for `op`; *scale receives what the error bound is
 * relative to (the sum of magnitudes, or |product|). */
static long double float_reference(const void *buf, parfor_dtype d, size_t n, parfor_op op,
                                   long double *scale) {
    long double acc = 0.0L, mag = 0.0L;
    size_t i;
    if (op == PARFOR_PROD || op == PARFOR_LOGICAL_AND) acc = 1.0L;
    if (op == PARFOR_MIN || op == PARFOR_MAX) acc = get_float(buf, d, 0);
    for (i = 0; i < n; i++) {
        long double x = get_float(buf, d, i);
        switch (op) {
        case PARFOR_SUM: acc += x; mag += fabsl(x); break;
        case PARFOR_PROD: acc *= x; break;
        case PARFOR_MIN: if (x < acc) acc = x; break;
        case PARFOR_MAX: if (x > acc) acc = x; break;
        case PARFOR_LOGICAL_AND: acc = acc != 0.0L && x != 0.0L; break;
        case PARFOR_LOGICAL_OR: acc = acc != 0.0L || x != 0.0L; break;
        default: break;
        }
    }
    *scale = op == PARFOR_PROD ? fabsl(acc) : mag;
    return acc;
}

static void fail(const char *what, parfor_dtype d, int dataset, const char *detail) {
    printf("FAIL %s %s (%s data): %s\n", what, dtype_names[d], dataset_names[dataset], detail);
    failures++;
}

/* Option sets each call is made with: the defaults; one thread; three threads with a
 * dynamic schedule and a chunk that is not a multiple of parfor's block length. */
static void make_options(parfor_options opts[NUM_OPTIONS]) {
    parfor_options_init(&opts[0]);
    parfor_options_init(&opts[1]);
    opts[1].num_threads = 1;
    parfor_options_init(&opts[2]);
    opts[2].num_threads = 3;
    opts[2].schedule = PARFOR_SCHEDULE_DYNAMIC;
    opts[2].chunk = 10007;
}

/* Runs every operator on one buffer; returns how many results were checked. */
static unsigned check_reduce(const void *buf, parfor_dtype d, size_t n, int dataset,
                             const parfor_options opts[NUM_OPTIONS]) {
    unsigned checked = 0;
    int o, k;
    char detail[256];
    for (o = 0; o < NUM_OPS; o++) {
        parfor_op op = ops[o];
        int bitwise = op == PARFOR_BIT_AND || op == PARFOR_BIT_OR || op == PARFOR_BIT_XOR;
        unsigned char first[8];
        long double float_ref = 0.0L, scale = 0.0L;
        uint64_t int_ref = 0;
        if (is_float(d) && bitwise) {
            continue; /* not defined for floats; the error case is shown in main */
        }
        /* The reference does not depend on the options: compute it once. */
        if (n > 0 || (op != PARFOR_MIN && op != PARFOR_MAX)) {
            if (is_float(d)) {
                float_ref = float_reference(buf, d, n, op, &scale);
            } else {
                int_ref = int_reference(buf, d, n, op);
            }
        }
        for (k = 0; k < NUM_OPTIONS; k++) {
            unsigned char out[8];
            parfor_status st = parfor_reduce(buf, n, d, op, &opts[k], out);
            if (n == 0 && (op == PARFOR_MIN || op == PARFOR_MAX)) {
                if (st != PARFOR_ERR_EMPTY) {
                    sprintf(detail, "%s of 0 elements gave status %d", op_names[o], (int)st);
                    fail("reduce", d, dataset, detail);
                }
                continue;
            }
            if (st != PARFOR_OK) {
                sprintf(detail, "%s: status %d: %.180s", op_names[o], (int)st, parfor_last_error());
                fail("reduce", d, dataset, detail);
                continue;
            }
            checked++;
            if (is_float(d)) {
                long double ref = float_ref;
                long double got = get_float(out, d, 0);
                int exact = op != PARFOR_SUM && op != PARFOR_PROD;
                if (exact ? got != ref : !float_close(got, ref, scale, n, d)) {
                    sprintf(detail, "%s = %.17Lg, reference %.17Lg", op_names[o], got, ref);
                    fail("reduce", d, dataset, detail);
                }
                /* Same bits for every option set: the reproducibility promise. */
                if (k == 0) {
                    memcpy(first, out, dtype_sizes[d]);
                } else if (memcmp(first, out, dtype_sizes[d]) != 0) {
                    sprintf(detail, "%s differs between option sets 0 and %d", op_names[o], k);
                    fail("reduce", d, dataset, detail);
                }
            } else {
                uint64_t ref = int_ref;
                uint64_t got = get_bits(out, d, 0);
                if (got != ref) {
                    sprintf(detail, "%s = 0x%llx, reference 0x%llx", op_names[o],
                            (unsigned long long)got, (unsigned long long)ref);
                    fail("reduce", d, dataset, detail);
                }
            }
        }
    }
    return checked;
}

/* parfor_dot of a and b against a serial loop. */
static void check_dot(const void *a, const void *b, parfor_dtype d, size_t n, int dataset,
                      const parfor_options opts[NUM_OPTIONS]) {
    int k;
    char detail[256];
    unsigned char first[8];
    for (k = 0; k < NUM_OPTIONS; k++) {
        unsigned char out[8];
        size_t i;
        parfor_status st = parfor_dot(a, b, n, d, &opts[k], out);
        if (st != PARFOR_OK) {
            sprintf(detail, "dot: status %d: %.180s", (int)st, parfor_last_error());
            fail("dot", d, dataset, detail);
            continue;
        }
        if (is_float(d)) {
            long double ref = 0.0L, mag = 0.0L, got = get_float(out, d, 0);
            size_t terms = n + 1; /* n products and n - 1 additions: gamma_n (Higham 3.1) */
            for (i = 0; i < n; i++) {
                long double p = get_float(a, d, i) * get_float(b, d, i);
                ref += p;
                mag += fabsl(p);
            }
            if (!float_close(got, ref, mag, terms, d)) {
                sprintf(detail, "dot = %.17Lg, reference %.17Lg", got, ref);
                fail("dot", d, dataset, detail);
            }
            if (k == 0) {
                memcpy(first, out, dtype_sizes[d]);
            } else if (memcmp(first, out, dtype_sizes[d]) != 0) {
                sprintf(detail, "dot differs between option sets 0 and %d", k);
                fail("dot", d, dataset, detail);
            }
        } else {
            /* The low bits of a product depend only on the low bits of the factors,
             * so zero-extended bits give the wrapped product for signed types too. */
            uint64_t ref = 0, mask = width_mask(d), got = get_bits(out, d, 0);
            for (i = 0; i < n; i++) {
                ref = (ref + get_bits(a, d, i) * get_bits(b, d, i)) & mask;
            }
            if (got != ref) {
                sprintf(detail, "dot = 0x%llx, reference 0x%llx", (unsigned long long)got,
                        (unsigned long long)ref);
                fail("dot", d, dataset, detail);
            }
        }
    }
}

/* Element i < element j in the dtype's order. */
static int less(const void *buf, parfor_dtype d, size_t i, size_t j) {
    if (is_float(d)) {
        return get_float(buf, d, i) < get_float(buf, d, j);
    }
    return order_key(d, get_bits(buf, d, i)) < order_key(d, get_bits(buf, d, j));
}

/* parfor_argmin / parfor_argmax against the first index of the serial extreme. */
static void check_arg(const void *buf, parfor_dtype d, size_t n, int dataset,
                      const parfor_options opts[NUM_OPTIONS]) {
    int k, want_max;
    char detail[256];
    for (want_max = 0; want_max < 2; want_max++) {
        size_t ref = 0, i;
        for (i = 1; i < n; i++) {
            if (want_max ? less(buf, d, ref, i) : less(buf, d, i, ref)) {
                ref = i;
            }
        }
        for (k = 0; k < NUM_OPTIONS; k++) {
            size_t got = (size_t)-1;
            parfor_status st = want_max ? parfor_argmax(buf, n, d, &opts[k], &got)
                                        : parfor_argmin(buf, n, d, &opts[k], &got);
            if (n == 0) {
                if (st != PARFOR_ERR_EMPTY || got != (size_t)-1) {
                    sprintf(detail, "arg%s of 0 elements: status %d", want_max ? "max" : "min",
                            (int)st);
                    fail("argmin/argmax", d, dataset, detail);
                }
            } else if (st != PARFOR_OK || got != ref) {
                sprintf(detail, "arg%s: status %d, index %zu, reference %zu",
                        want_max ? "max" : "min", (int)st, got, ref);
                fail("argmin/argmax", d, dataset, detail);
            }
        }
    }
}

/* The documented error path: an operator that is not defined for the dtype fails
 * with PARFOR_ERR_INVALID_ARGUMENT, explains why, and leaves *out alone. */
static void show_error_case(void) {
    double data[4] = {1.0, 2.0, 3.0, 4.0};
    double out = -42.0;
    parfor_status st = parfor_reduce(data, 4, PARFOR_F64, PARFOR_BIT_AND, NULL, &out);
    printf("error case: BIT_AND on double -> status %d: %s\n", (int)st, parfor_status_message(st));
    printf("error case: parfor_last_error(): %s\n", parfor_last_error());
    if (st != PARFOR_ERR_INVALID_ARGUMENT || out != -42.0 || parfor_last_error()[0] == '\0') {
        printf("FAIL error case: expected PARFOR_ERR_INVALID_ARGUMENT, a message, *out untouched\n");
        failures++;
    }
}

int main(int argc, char **argv) {
    size_t n = DEFAULT_N;
    parfor_options opts[NUM_OPTIONS];
    void *buf[NUM_DATASETS];
    int d, s;
    unsigned long checked = 0;

    if (argc > 1) {
        char *end;
        unsigned long v = strtoul(argv[1], &end, 10);
        if (*end != '\0' || end == argv[1]) {
            fprintf(stderr, "usage: %s [elements]\n", argv[0]);
            return 2;
        }
        n = (size_t)v;
    }
    make_options(opts);
    printf("parfor %s, team of %zu threads, %zu elements per buffer\n", parfor_version(),
           parfor_num_threads(), n);
    for (d = 0; d < NUM_DTYPES; d++) {
        unsigned long before = failures, results = 0;
        for (s = 0; s < NUM_DATASETS; s++) {
            /* malloc's alignment suits every dtype; +1 keeps malloc(0) out of the way. */
            buf[s] = malloc(n * dtype_sizes[d] + 1);
            if (buf[s] == NULL) {
                fprintf(stderr, "reduce: out of memory\n");
                return 1;
            }
            fill(buf[s], (parfor_dtype)d, n, s);
        }
        for (s = 0; s < NUM_DATASETS; s++) {
            results += check_reduce(buf[s], (parfor_dtype)d, n, s, opts);
            check_dot(buf[0], buf[s], (parfor_dtype)d, n, s, opts);
            check_arg(buf[s], (parfor_dtype)d, n, s, opts);
        }
        for (s = 0; s < NUM_DATASETS; s++) {
            free(buf[s]);
        }
        checked += results;
        printf("%-7s %2lu reductions + dot, argmin, argmax checked: %s\n", dtype_names[d],
               results, failures == before ? "ok" : "FAILED");
    }
    show_error_case();
    if (failures != 0) {
        printf("reduce: %lu checks FAILED\n", failures);
        return 1;
    }
    printf("reduce: all %lu reductions match the serial reference\n", checked);
    return 0;
}
