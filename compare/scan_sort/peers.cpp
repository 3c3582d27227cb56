// Peers of parfor's scan and sort (compare/src/bin/scan_sort.rs): std::sort, and
// oneTBB's parallel_scan and parallel_sort in a task_arena of the requested size.
// Built by compare/build_scan_sort.rs where <tbb/tbb.h> exists.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include <tbb/blocked_range.h>
#include <tbb/parallel_scan.h>
#include <tbb/parallel_sort.h>
#include <tbb/task_arena.h>

namespace {

// numpy's order for doubles: NaN last.
struct LessNanLast {
    bool operator()(double a, double b) const {
        return std::isnan(b) ? !std::isnan(a) : a < b;
    }
};

tbb::task_arena &arena(int threads) {
    static std::mutex lock;
    static std::map<int, std::unique_ptr<tbb::task_arena>> arenas;
    std::lock_guard<std::mutex> guard(lock);
    auto &slot = arenas[threads];
    if (!slot) slot = std::make_unique<tbb::task_arena>(threads);
    return *slot;
}

template <typename T>
void tbb_scan(const T *x, T *out, size_t n, int threads) {
    arena(threads).execute([&] {
        tbb::parallel_scan(
            tbb::blocked_range<size_t>(0, n), T(0),
            [&](const tbb::blocked_range<size_t> &r, T acc, bool final_pass) {
                for (size_t i = r.begin(); i < r.end(); i++) {
                    acc += x[i];
                    if (final_pass) out[i] = acc;
                }
                return acc;
            },
            [](T a, T b) { return a + b; });
    });
}

}  // namespace

extern "C" {

void pss_tbb_scan_f64(const double *x, double *out, size_t n, int threads) { tbb_scan(x, out, n, threads); }
void pss_tbb_scan_i64(const int64_t *x, int64_t *out, size_t n, int threads) { tbb_scan(x, out, n, threads); }

void pss_std_sort_f64(double *x, size_t n) { std::sort(x, x + n, LessNanLast()); }
void pss_std_sort_i32(int32_t *x, size_t n) { std::sort(x, x + n); }
void pss_std_sort_u64(uint64_t *x, size_t n) { std::sort(x, x + n); }

void pss_tbb_sort_f64(double *x, size_t n, int threads) {
    arena(threads).execute([&] { tbb::parallel_sort(x, x + n, LessNanLast()); });
}
void pss_tbb_sort_i32(int32_t *x, size_t n, int threads) {
    arena(threads).execute([&] { tbb::parallel_sort(x, x + n); });
}
void pss_tbb_sort_u64(uint64_t *x, size_t n, int threads) {
    arena(threads).execute([&] { tbb::parallel_sort(x, x + n); });
}

}  // extern "C"
