/* Prints parfor_num_threads(), then makes a few calls so that a configuration
 * warning, if any, has every chance to be printed more than once (the contract is:
 * once). Driven by tests/interop.rs with various environments. */
#include <stdio.h>

#include "parfor.h"

static int nop(void *ctx, size_t begin, size_t end) {
    (void)ctx;
    (void)begin;
    (void)end;
    return 0;
}

int main(void) {
    size_t n = parfor_num_threads();
    for (int i = 0; i < 3; i++) {
        if (parfor_num_threads() != n) return 1;
        if (parfor_for(0, 100000, NULL, nop, NULL) != PARFOR_OK) return 1;
    }
    printf("%zu\n", n);
    return 0;
}
