// NCCL collectives on device buffers, one GPU per rank, bootstrapped by MPI (the unique id is
// made by rank 0 and broadcast). NCCL builds only; used by engine/mpi_communicator.cpp.
#pragma once
#include <cstdint>
#include <string>

namespace pneumo {

class NcclCollectives {
 public:
  // A new unique id (rank 0 makes it; the caller broadcasts the bytes).
  static std::string make_unique_id();
  // Joins the clique of `size` ranks on the current CUDA device.
  NcclCollectives(int rank, int size, const std::string& unique_id);
  ~NcclCollectives();
  NcclCollectives(const NcclCollectives&) = delete;
  NcclCollectives& operator=(const NcclCollectives&) = delete;

  // In-place sum of `count` floats of device memory over the ranks, on NCCL's own stream after
  // the work already queued on the default stream. Waits for it, polling ncclCommGetAsyncError;
  // after timeout_seconds (a rank died or hangs) the communicator is aborted and this throws.
  void allreduce_sum(float* device_values, int64_t count, double timeout_seconds);
  // The same split in two: start queues the sum on NCCL's stream after the work already on the
  // default stream and returns; wait_started waits for every started sum (bounded as above)
  // and makes the default stream's later work wait for them.
  void start_sum(float* device_values, int64_t count);
  void wait_started(double timeout_seconds);

 private:
  void release();  // destroys the communicator, the event and the stream
  struct State;
  State* state_;
};

}  // namespace pneumo
