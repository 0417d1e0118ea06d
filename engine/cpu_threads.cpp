#include "engine/cpu_threads.h"

#include <algorithm>
#include <exception>
#include <mutex>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef PNEUMO_HAVE_OPENBLAS
extern "C" void openblas_set_num_threads(int num_threads);
#endif

namespace pneumo {

namespace {
int initial_thread_count() {
  unsigned hardware = std::thread::hardware_concurrency();
  return hardware == 0 ? 1 : static_cast<int>(hardware);
}
int thread_count = initial_thread_count();
}  // namespace

int cpu_thread_count() { return thread_count; }

void set_cpu_thread_count(int count) {
  thread_count = std::max(1, count);
#ifdef PNEUMO_HAVE_OPENBLAS
  openblas_set_num_threads(thread_count);
#endif
#ifdef _OPENMP
  omp_set_num_threads(thread_count);
#endif
}

std::string cpu_blas_name() {
#ifdef PNEUMO_HAVE_OPENBLAS
  return "OpenBLAS";
#else
  return "built-in GEMM";
#endif
}

void parallel_for(int64_t count, int64_t min_chunk, void (*body)(void*, int64_t, int64_t),
                  void* context) {
  if (count <= 0) return;
  int64_t threads = std::min<int64_t>(thread_count, (count + min_chunk - 1) / std::max<int64_t>(1, min_chunk));
  if (threads <= 1) {
    body(context, 0, count);
    return;
  }
  std::exception_ptr failure;
  std::mutex failure_mutex;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static, 1)
  for (int64_t t = 0; t < threads; ++t) {
#else
  std::vector<std::thread> workers;
  for (int64_t t = 0; t < threads; ++t) workers.emplace_back([&, t] {
#endif
    int64_t begin = count * t / threads, end = count * (t + 1) / threads;
    try {
      body(context, begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
#ifdef _OPENMP
  }
#else
  });
  for (auto& worker : workers) worker.join();
#endif
  if (failure) std::rethrow_exception(failure);
}

}  // namespace pneumo
