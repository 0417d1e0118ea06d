// PNEUMO_HD marks a per-element function that is compiled for the CPU and, under nvcc, for the
// GPU too: math shared by both back ends is written once with it.
#pragma once
#if defined(__CUDACC__)
#define PNEUMO_HD __host__ __device__ __forceinline__
#else
#define PNEUMO_HD inline
#endif
