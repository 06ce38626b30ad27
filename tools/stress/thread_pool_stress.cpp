// Stress test of the thread pool (csrc/runtime/thread_pool.cpp): many short
// fork-join jobs back to back, with more threads than cores, each task
// counted. Fails if a task runs twice or not at all; a hang is a failure of
// the caller's timeout. tools/stress_thread_pool.sh builds it plain and under
// ThreadSanitizer. (It found a helper that woke late pairing the old job's
// claim word with the next job's task count, and running a task twice.)
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "runtime/thread_pool.h"

using fusedprop::runtime::parallel_for;

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 3;
    const long jobs = argc > 2 ? std::atol(argv[2]) : 100000;
    fusedprop::runtime::set_num_threads(threads);
    std::mt19937 rng(1);
    for (long job = 0; job < jobs; ++job) {
        const std::size_t n = 1 + rng() % 9;
        const int work = rng() % 3 == 0 ? 2000 : 10;  // some tasks long enough for a helper to join
        std::atomic<int> runs[9] = {};
        parallel_for(
            n,
            [&](std::size_t i) {
                volatile int x = 0;
                for (int s = 0; s < work; ++s) x = x + 1;
                runs[i].fetch_add(1);
            },
            threads);
        for (std::size_t i = 0; i < 9; ++i) {
            if (runs[i].load() != (i < n ? 1 : 0)) {
                std::printf("FAIL: job %ld, task %zu of %zu ran %d times\n", job, i, n, runs[i].load());
                return 1;
            }
        }
    }
    std::printf("ok: %ld jobs on %d threads, every task ran once\n", jobs, threads);
    return 0;
}
