/* Peers of parfor's scan and sort in the scan/sort comparison (compare/src/bin/scan_sort.rs):
 * a serial loop and OpenMP 5's inscan reduction with the scan directive (gcc 12), and
 * qsort. Built by compare/build_scan_sort.rs with gcc -O3 -march=native -fopenmp. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

void pss_scan_serial_f64(const double *restrict x, double *restrict out, size_t n) {
    double acc = 0.0;
    for (size_t i = 0; i < n; i++) {
        acc += x[i];
        out[i] = acc;
    }
}

void pss_scan_serial_i64(const int64_t *restrict x, int64_t *restrict out, size_t n) {
    int64_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += x[i];
        out[i] = acc;
    }
}

void pss_scan_omp_f64(const double *restrict x, double *restrict out, size_t n, int threads) {
    double acc = 0.0;
#pragma omp parallel for simd reduction(inscan, + : acc) num_threads(threads)
    for (size_t i = 0; i < n; i++) {
        acc += x[i];
#pragma omp scan inclusive(acc)
        out[i] = acc;
    }
}

void pss_scan_omp_i64(const int64_t *restrict x, int64_t *restrict out, size_t n, int threads) {
    int64_t acc = 0;
#pragma omp parallel for simd reduction(inscan, + : acc) num_threads(threads)
    for (size_t i = 0; i < n; i++) {
        acc += x[i];
#pragma omp scan inclusive(acc)
        out[i] = acc;
    }
}

/* numpy's order for doubles: NaN last. */
static int cmp_f64(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    if (x != x) return (y != y) ? 0 : 1;
    if (y != y) return -1;
    return (x > y) - (x < y);
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

void pss_qsort_f64(double *x, size_t n) { qsort(x, n, sizeof *x, cmp_f64); }
void pss_qsort_i32(int32_t *x, size_t n) { qsort(x, n, sizeof *x, cmp_i32); }
void pss_qsort_u64(uint64_t *x, size_t n) { qsort(x, n, sizeof *x, cmp_u64); }
