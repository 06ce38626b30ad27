#include "thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <condition_variable>
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
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    unsigned hw = std::thread::hardware_concurrency();
    return hw > 0 ? static_cast<int>(hw) : 1;
}

thread_local bool t_inside_task = false;

// One fork-join job at a time. Workers sleep on a condition variable after a
// short spin, so back-to-back kernel calls don't pay a wake-up each time.
class Pool {
public:
    explicit Pool(int n_threads) {
        for (int i = 0; i + 1 < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
    }

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // The caller must hold use_mutex.
    void run(std::size_t n_tasks, FunctionRef<void(std::size_t)> task, int n_threads) {
        const int helpers = std::min<int>(n_threads - 1, static_cast<int>(workers_.size()));
        {
            std::lock_guard<std::mutex> lock(state_mutex_);
            task_ = &task;
            n_tasks_ = n_tasks;
            next_.store(0, std::memory_order_relaxed);
            participants_ = helpers;
            remaining_.store(helpers, std::memory_order_relaxed);
            error_ = nullptr;
            generation_.fetch_add(1, std::memory_order_release);
        }
        wake_.notify_all();
        work();
        // Wait for the helpers: spin briefly, then sleep.
        for (int spin = 0; remaining_.load(std::memory_order_acquire) != 0; ++spin) {
            if (spin < 4000) {
                cpu_relax();
            } else {
                std::unique_lock<std::mutex> lock(state_mutex_);
                done_.wait(lock, [this] { return remaining_.load(std::memory_order_acquire) == 0; });
            }
        }
        task_ = nullptr;
        if (error_) std::rethrow_exception(error_);
    }

    std::mutex use_mutex;

private:
    void work() {
        t_inside_task = true;
        for (;;) {
            std::size_t i = next_.fetch_add(1, std::memory_order_relaxed);
            if (i >= n_tasks_) break;
            try {
                (*task_)(i);
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mutex_);
                if (!error_) error_ = std::current_exception();
            }
        }
        t_inside_task = false;
    }

    void worker_loop(int index) {
        // Start from generation 0, the pool's initial one, not from whatever
        // generation_ holds when this thread gets scheduled: run() may already
        // have published the first job, and a worker that read the new
        // generation as "seen" would sleep through it while run() waits for
        // it forever (the deadlock this used to be).
        std::uint64_t seen = 0;
        for (;;) {
            // Spin a little before sleeping: kernels often come back to back.
            for (int spin = 0; spin < 20000 && generation_.load(std::memory_order_acquire) == seen; ++spin)
                cpu_relax();
            {
                std::unique_lock<std::mutex> lock(state_mutex_);
                wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
                seen = generation_.load(std::memory_order_acquire);
                if (index >= participants_) continue;  // this job needs fewer threads
            }
            work();
            if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                std::lock_guard<std::mutex> lock(state_mutex_);
                done_.notify_all();
            }
        }
    }

    std::vector<std::thread> workers_;
    std::mutex state_mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    std::atomic<std::uint64_t> generation_{0};
    FunctionRef<void(std::size_t)>* task_ = nullptr;
    std::size_t n_tasks_ = 0;
    std::atomic<std::size_t> next_{0};
    int participants_ = 0;
    std::atomic<int> remaining_{0};
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
    pool.run(n_tasks, task, n_threads);
}

}  // namespace fusedprop::runtime
