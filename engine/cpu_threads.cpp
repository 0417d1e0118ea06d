// A small persistent pool for parallel_for. Workers sleep on a condition variable between jobs
// (no spinning), so they leave the cores alone between jobs. OpenBLAS runs single-threaded
// inside this pool's jobs, so no second set of threads competes for the cores.
#include "engine/cpu_threads.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#ifdef PNEUMO_HAVE_OPENBLAS
extern "C" void openblas_set_num_threads(int num_threads);
#endif

namespace pneumo {

namespace {

int initial_thread_count() {
#ifdef PNEUMO_HAVE_OPENBLAS
  // OpenBLAS calls are single-threaded; cpu_sgemm splits them over this pool (kernels/cpu/gemm.cpp).
  openblas_set_num_threads(1);
#endif
  unsigned hardware = std::thread::hardware_concurrency();
  return hardware == 0 ? 1 : static_cast<int>(hardware);
}

thread_local bool inside_pool_job = false;

class ThreadPool {
 public:
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

  // Runs body over `chunks` chunks of [0, count); chunk 0 on the calling thread.
  void run(int64_t count, int chunks, void (*body)(void*, int64_t, int64_t), void* context) {
    std::lock_guard<std::mutex> serial(run_mutex_);  // one job at a time
    ensure_workers(chunks - 1);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      body_ = body;
      context_ = context;
      count_ = count;
      chunks_ = chunks;
      pending_ = chunks - 1;
      failure_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    run_chunk(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    if (failure_) std::rethrow_exception(failure_);
  }

 private:
  void ensure_workers(int needed) {
    while (static_cast<int>(workers_.size()) < needed) {
      int index = static_cast<int>(workers_.size()) + 1;  // chunk index this worker runs
      workers_.emplace_back([this, index] { worker_loop(index); });
    }
  }

  void run_chunk(int chunk) {
    int64_t begin = count_ * chunk / chunks_, end = count_ * (chunk + 1) / chunks_;
    bool was_inside = inside_pool_job;
    inside_pool_job = true;
    try {
      body_(context_, begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!failure_) failure_ = std::current_exception();
    }
    inside_pool_job = was_inside;
  }

  void worker_loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
        if (index >= chunks_) continue;
      }
      run_chunk(index);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (--pending_ == 0) done_.notify_one();
      }
    }
  }

  std::mutex run_mutex_, mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  void (*body_)(void*, int64_t, int64_t) = nullptr;
  void* context_ = nullptr;
  int64_t count_ = 0;
  int chunks_ = 0, pending_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  std::exception_ptr failure_;
};

int thread_count = initial_thread_count();

ThreadPool& pool() {
  static ThreadPool instance;
  return instance;
}

}  // namespace

int cpu_thread_count() { return thread_count; }

void set_cpu_thread_count(int count) { thread_count = std::max(1, count); }

std::string cpu_blas_name() {
#ifdef PNEUMO_HAVE_OPENBLAS
  return "OpenBLAS";
#else
  return "built-in GEMM";
#endif
}

void parallel_for(int64_t count, int64_t min_chunk, void (*body)(void*, int64_t, int64_t), void* context) {
  if (count <= 0) return;
  int64_t chunks =
      std::min<int64_t>(thread_count, (count + std::max<int64_t>(1, min_chunk) - 1) / std::max<int64_t>(1, min_chunk));
  // Nested calls (from inside a job) and single chunks run inline on the calling thread.
  if (chunks <= 1 || inside_pool_job) {
    body(context, 0, count);
    return;
  }
  pool().run(count, static_cast<int>(chunks), body, context);
}

}  // namespace pneumo
