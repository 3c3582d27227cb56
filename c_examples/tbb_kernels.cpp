// tbb_kernels.cpp: the comparison's loops written with oneTBB, as a TBB user would
// (declarations and contracts in omp_kernels.h). Built by compare/build.rs when
// <tbb/tbb.h> exists; linked with -ltbb.
#include <cstddef>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include "omp_kernels.h"

namespace {

// 64 independent partial sums, as ompk_sum_f64_serial: enough add chains to run at
// load throughput, written so that the compiler vectorises them.
constexpr std::size_t kLanes = 64;

double sum_lanes(const double *x, std::size_t n) {
    double acc[kLanes] = {};
    std::size_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        for (std::size_t j = 0; j < kLanes; j++) {
            acc[j] += x[i + j];
        }
    }
    for (; i < n; i++) {
        acc[i % kLanes] += x[i];
    }
    for (std::size_t half = kLanes / 2; half > 0; half /= 2) {
        for (std::size_t k = 0; k < half; k++) {
            acc[k] += acc[k + half];
        }
    }
    return acc[0];
}

}  // namespace

extern "C" int tbbk_sum_f64(const void *a, const void *b, std::size_t n, void *out) {
    (void)b;
    const double *x = static_cast<const double *>(a);
    *static_cast<double *>(out) = tbb::parallel_reduce(
        tbb::blocked_range<std::size_t>(0, n), 0.0,
        [x](const tbb::blocked_range<std::size_t> &r, double s) {
            return s + sum_lanes(x + r.begin(), r.size());
        },
        [](double l, double r) { return l + r; });
    return 0;
}

extern "C" int tbbk_forkjoin2(int who[2]) {
    // Grain 1 with the simple partitioner: two tasks of one iteration, so that a
    // second thread can take one, as OpenMP's and parfor's static split does.
    tbb::parallel_for(
        tbb::blocked_range<int>(0, 2, 1),
        [who](const tbb::blocked_range<int> &r) {
            for (int i = r.begin(); i != r.end(); i++) {
                who[i] = tbb::this_task_arena::current_thread_index();
            }
        },
        tbb::simple_partitioner());
    return 0;
}

extern "C" int tbbk_max_concurrency(void) { return tbb::this_task_arena::max_concurrency(); }
