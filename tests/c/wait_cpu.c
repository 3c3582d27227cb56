/* CPU time a process burns while it sleeps after a burst of parfor calls (driven by
 * tests/interop.rs with different wait policies). Prints the milliseconds of user +
 * system time, all threads included, spent during a 1 s sleep. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#include "parfor.h"

static int work(void *ctx, size_t begin, size_t end) {
    volatile double *sink = ctx;
    double s = 0;
    for (size_t i = begin; i < end; i++) s += (double)i * 0.5;
    *sink += s * 0; /* keep the loop; the value is irrelevant */
    return 0;
}

static double cpu_ms(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

int main(void) {
    static double data[100000];
    for (size_t i = 0; i < 100000; i++) data[i] = (double)i;
    parfor_options o;
    parfor_options_init(&o);
    o.num_threads = 4; /* three workers, whatever the machine */
    volatile double sink = 0;
    for (int i = 0; i < 300; i++) {
        double out;
        if (parfor_for(0, 10000, &o, work, (void *)&sink) != PARFOR_OK) return 1;
        if (parfor_reduce(data, 100000, PARFOR_F64, PARFOR_SUM, &o, &out) != PARFOR_OK) return 1;
    }
    double before = cpu_ms();
    struct timespec one_second = {1, 0};
    nanosleep(&one_second, NULL);
    printf("%.1f\n", cpu_ms() - before);
    return 0;
}
