/* A program outside the parfor repository, built against an installed parfor (see
 * tests/install.rs and README.md, "Installing"):
 *   cc app.c $(pkg-config --cflags --libs parfor)        (shared)
 *   CMake: find_package(parfor 0.2 REQUIRED), parfor::parfor
 *   static, with pkg-config --static
 * Fills an array with parfor_for and sums it with parfor_reduce, checks the sum
 * against the exact integer formula, and checks that the header it was compiled with
 * (PARFOR_VERSION_*) and the library it runs with (parfor_version()) agree.
 * Prints "parfor <version> ok <sum>" and exits 0 when all holds. */
#include <parfor.h>
#include <stdio.h>
#include <string.h>

#define N 1000000

static int fill(void *ctx, size_t begin, size_t end) {
    double *x = ctx;
    for (size_t i = begin; i < end; i++) x[i] = (double)i;
    return 0;
}

int main(void) {
    static double x[N];
    char expected[32];
    double sum = 0.0;
    snprintf(expected, sizeof expected, "%d.%d.%d", PARFOR_VERSION_MAJOR, PARFOR_VERSION_MINOR,
             PARFOR_VERSION_PATCH);
    if (strcmp(expected, PARFOR_VERSION_STRING) != 0 ||
        strcmp(parfor_version(), PARFOR_VERSION_STRING) != 0) {
        fprintf(stderr, "version mismatch: header %s (%s), library %s\n", PARFOR_VERSION_STRING,
                expected, parfor_version());
        return 1;
    }
    if (parfor_for(0, N, NULL, fill, x) != PARFOR_OK ||
        parfor_reduce(x, N, PARFOR_F64, PARFOR_SUM, NULL, &sum) != PARFOR_OK) {
        fprintf(stderr, "parfor: %s\n", parfor_last_error());
        return 1;
    }
    /* 0 + 1 + ... + (N-1) = N(N-1)/2 = 499999500000, exact in a double. */
    if (sum != (double)N * (N - 1) / 2) {
        fprintf(stderr, "sum %.17g, expected %.17g\n", sum, (double)N * (N - 1) / 2);
        return 1;
    }
    printf("parfor %s ok %.0f\n", parfor_version(), sum);
    return 0;
}
