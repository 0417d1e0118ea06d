// CPU threading: one pool and one thread count for the engine's parallel loops, which also run
// the OpenBLAS calls (one single-threaded GEMM per thread, see kernels/cpu/gemm.cpp).
#pragma once
#include <cstdint>
#include <string>
#include <type_traits>

namespace pneumo {

int cpu_thread_count();                // threads used by CPU kernels (default: hardware threads)
void set_cpu_thread_count(int count);  // threads of parallel_for (and so of every GEMM)
std::string cpu_blas_name();           // "OpenBLAS" or "built-in GEMM"

// Runs body(begin, end) over [0, count) split into contiguous chunks, one per thread.
// With one thread (or count small) it runs inline. Exceptions from body are rethrown.
void parallel_for(int64_t count, int64_t min_chunk, void (*body)(void*, int64_t, int64_t), void* context);

template <typename Function>
void parallel_for(int64_t count, int64_t min_chunk, Function&& function) {
  using Callable = std::remove_reference_t<Function>;
  parallel_for(
      count, min_chunk,
      [](void* context, int64_t begin, int64_t end) { (*static_cast<Callable*>(context))(begin, end); },
      const_cast<void*>(static_cast<const void*>(&function)));
}

}  // namespace pneumo
