#include "thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace fusedprop::runtime {
namespace {

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

int parse_positive(const char* text) {
    if (text == nullptr || *text == '\0') return 0;
    char* end = nullptr;
    long value = std::strtol(text, &end, 10);
    if (*end != '\0' || value < 1 || value > 4096) return 0;
    return static_cast<int>(value);
}

int affinity_cpu_count() {
#if defined(__linux__)  // glibc and musl; macOS has no affinity masks
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    unsigned hw = std::thread::hardware_concurrency();
    return hw > 0 ? static_cast<int>(hw) : 1;
}

thread_local bool t_inside_task = false;

// One fork-join job at a time. Tasks are claimed from a shared counter; the
// caller waits for every task to be *finished*, never for every helper to
// check in. That matters on a busy machine: a helper whose core is taken by
// another process (OpenBLAS's or PyTorch's spinning workers, a build) may
// wake up long after the caller has run all the tasks itself, and the job
// must not wait for it.
//
// The job word packs everything a claim must see at once: the job's
// generation (high 32 bits), its task count (16 bits) and the next unclaimed
// task (low 16 bits). A claim is one compare-exchange on that word, so it
// fails if the job it was meant for has ended, and the count it checks is
// that job's (kept apart, a helper could pair the old job's word with the
// next job's count and run a task twice). A claimed task keeps its job alive
// (the caller waits for it), which is what makes reading task_ after a
// successful claim safe.
class Pool {
public:
    explicit Pool(int n_threads) {
        for (int i = 0; i + 1 < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
    }

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    static constexpr std::size_t kMaxTasks = 0xffff;  // the task count's field in the job word

    // The caller must hold use_mutex. n_tasks <= kMaxTasks.
    void run(std::size_t n_tasks, FunctionRef<void(std::size_t)> task, int n_threads) {
        const int helpers = std::min<int>(n_threads - 1, static_cast<int>(workers_.size()));
        std::uint64_t generation;
        {
            std::lock_guard<std::mutex> lock(state_mutex_);
            task_ = &task;
            helpers_.store(helpers, std::memory_order_relaxed);
            done_.store(0, std::memory_order_relaxed);
            error_ = nullptr;
            generation = (job_.load(std::memory_order_relaxed) >> 32) + 1;
            job_.store(generation << 32 | std::uint64_t{n_tasks} << 16, std::memory_order_release);
        }
        wake_.notify_all();
        work(generation);
        // Wait for tasks that helpers claimed and are still running: spin
        // briefly, then sleep.
        for (int spin = 0; done_.load(std::memory_order_acquire) != n_tasks; ++spin) {
            if (spin < 4000) {
                cpu_relax();
            } else {
                std::unique_lock<std::mutex> lock(state_mutex_);
                finished_.wait(lock, [&] { return done_.load(std::memory_order_acquire) == n_tasks; });
            }
        }
        if (error_) std::rethrow_exception(error_);
    }

    std::mutex use_mutex;

private:
    // Claims and runs tasks of job `generation` until none is left.
    void work(std::uint64_t generation) {
        t_inside_task = true;
        for (;;) {
            std::uint64_t word = job_.load(std::memory_order_acquire);
            if ((word >> 32) != generation) break;  // that job has ended
            const std::size_t i = word & 0xffff, n = (word >> 16) & 0xffff;
            if (i >= n) break;
            if (!job_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel)) continue;
            try {
                (*task_)(i);
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mutex_);
                if (!error_) error_ = std::current_exception();
            }
            if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
                std::lock_guard<std::mutex> lock(state_mutex_);
                finished_.notify_all();
            }
        }
        t_inside_task = false;
    }

    void worker_loop(int index) {
        std::uint64_t seen = 0;  // generations start at 1: the first job is never missed
        for (;;) {
            // Spin a little before sleeping: kernels often come back to back.
            for (int spin = 0; spin < 20000 && (job_.load(std::memory_order_acquire) >> 32) == seen; ++spin)
                cpu_relax();
            {
                std::unique_lock<std::mutex> lock(state_mutex_);
                wake_.wait(lock, [&] { return (job_.load(std::memory_order_acquire) >> 32) != seen; });
                seen = job_.load(std::memory_order_acquire) >> 32;
            }
            if (index < helpers_.load(std::memory_order_relaxed)) work(seen);  // else: this job wants fewer threads
        }
    }

    std::vector<std::thread> workers_;
    std::mutex state_mutex_;
    std::condition_variable wake_;      // a new job was posted
    std::condition_variable finished_;  // the last task of a job finished
    std::atomic<std::uint64_t> job_{0};  // generation << 32 | task count << 16 | next unclaimed task
    std::atomic<int> helpers_{0};
    std::atomic<std::size_t> done_{0};
    FunctionRef<void(std::size_t)>* task_ = nullptr;
    std::mutex error_mutex_;
    std::exception_ptr error_;
};

std::atomic<int> g_num_threads{0};  // 0: not read from the environment yet
std::mutex g_pool_mutex;            // guards g_pool (creation and resizing)
Pool* g_pool = nullptr;             // leaked on purpose: no join at exit

void reset_after_fork() {
    // The parent's workers do not exist in the child; its mutexes may be held.
    // Start over, leaking the old pool (it cannot be destroyed safely).
    new (&g_pool_mutex) std::mutex();
    g_pool = nullptr;
}

Pool& pool_of_size(int n) {
    static const bool registered = [] { return pthread_atfork(nullptr, nullptr, reset_after_fork) == 0; }();
    (void)registered;
    std::lock_guard<std::mutex> lock(g_pool_mutex);
    if (g_pool == nullptr || g_pool->size() < n) {
        // Growing leaks the old pool only when it is idle: callers resize via
        // set_num_threads, which waits for the pool to be free.
        Pool* old = g_pool;
        g_pool = new Pool(n);
        (void)old;  // its threads sleep forever; a resize is rare
    }
    return *g_pool;
}

}  // namespace

int default_num_threads() {
    if (int n = parse_positive(std::getenv("FUSEDPROP_NUM_THREADS"))) return n;
    if (int n = parse_positive(std::getenv("OMP_NUM_THREADS"))) return n;
    return affinity_cpu_count();
}

int get_num_threads() {
    int n = g_num_threads.load(std::memory_order_relaxed);
    if (n == 0) {
        n = default_num_threads();
        g_num_threads.store(n, std::memory_order_relaxed);
    }
    return n;
}

void set_num_threads(int n) {
    if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1, got " + std::to_string(n));
    g_num_threads.store(n, std::memory_order_relaxed);
}

void parallel_for(std::size_t n_tasks, FunctionRef<void(std::size_t)> task, int max_threads) {
    int n_threads = max_threads > 0 ? max_threads : get_num_threads();
    if (static_cast<std::size_t>(n_threads) > n_tasks) n_threads = static_cast<int>(n_tasks);
    if (n_threads <= 1 || t_inside_task) {
        for (std::size_t i = 0; i < n_tasks; ++i) task(i);
        return;
    }
    Pool& pool = pool_of_size(n_threads);
    std::unique_lock<std::mutex> busy(pool.use_mutex, std::try_to_lock);
    if (!busy.owns_lock()) {
        // Another Python thread is using the pool: run here rather than wait.
        for (std::size_t i = 0; i < n_tasks; ++i) task(i);
        return;
    }
    // The job word counts tasks in 16 bits: run more in batches.
    constexpr std::size_t kBatch = Pool::kMaxTasks;
    for (std::size_t first = 0; first < n_tasks; first += kBatch) {
        auto shifted = [&](std::size_t i) { task(first + i); };
        pool.run(std::min(kBatch, n_tasks - first), shifted, n_threads);
    }
}

}  // namespace fusedprop::runtime
