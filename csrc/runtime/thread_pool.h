// The persistent thread pool every parallel kernel runs on.
//
// Not OpenMP on purpose: NumPy's OpenBLAS, PyTorch and scikit-learn each load
// their own OpenMP runtime into the same process, and two runtimes spinning
// on two cores fight each other.
//
// Size: FUSEDPROP_NUM_THREADS, else OMP_NUM_THREADS, else the CPUs this
// process may run on (its affinity mask). set_num_threads() changes it.
//
// Guarantees the kernels rely on:
// - parallel_for(n, fn) runs fn(0) .. fn(n-1) exactly once each and returns
//   when all are done. The calling thread takes part.
// - Which thread runs a task is unspecified, so a task must write only its
//   own part of the output and compute it the same way wherever it runs:
//   that makes results bitwise identical for every thread count.
// - Called from inside a task, or while another Python thread holds the pool,
//   parallel_for runs the tasks serially on the calling thread: never a
//   deadlock, never oversubscription.
// - Safe after fork(): the child starts a fresh pool on first use.
#pragma once

#include <cstddef>

#include "function_ref.h"

namespace fusedprop::runtime {

int get_num_threads();

// n >= 1. Raises std::invalid_argument for n < 1.
void set_num_threads(int n);

// The thread count the environment asks for (see above), at least 1.
int default_num_threads();

// Runs task(i) for i in [0, n_tasks); at most max_threads threads
// (0 means get_num_threads()). The first exception a task throws is rethrown
// here once every thread has stopped; kernels should not throw inside tasks.
void parallel_for(std::size_t n_tasks, FunctionRef<void(std::size_t)> task, int max_threads = 0);

}  // namespace fusedprop::runtime
