// NcclCollectives (engine/nccl_communicator.h): ncclAllReduce on its own stream with a bounded,
// asynchronous-error-checked wait.
#include "engine/nccl_communicator.h"

#include <nccl.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "engine/check.h"
#include "engine/cuda_check.h"
#include "engine/distributed.h"

namespace pneumo {

namespace {
void check_nccl(ncclResult_t result, const char* expression) {
  if (result != ncclSuccess && result != ncclInProgress)
    throw Error(std::string("NCCL: ") + expression + ": " + ncclGetErrorString(result));
}
#define PNEUMO_NCCL_CHECK(expression) check_nccl((expression), #expression)
}  // namespace

struct NcclCollectives::State {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t ready = nullptr;
  int rank = 0;
};

std::string NcclCollectives::make_unique_id() {
  ncclUniqueId id;
  PNEUMO_NCCL_CHECK(ncclGetUniqueId(&id));
  return std::string(reinterpret_cast<const char*>(&id), sizeof id);
}

NcclCollectives::NcclCollectives(int rank, int size, const std::string& unique_id) : state_(new State) {
  PNEUMO_REQUIRE(unique_id.size() == sizeof(ncclUniqueId), "NCCL: bad unique id size");
  ncclUniqueId id;
  std::memcpy(&id, unique_id.data(), sizeof id);
  state_->rank = rank;
  try {
    PNEUMO_CUDA_CHECK(cudaStreamCreateWithFlags(&state_->stream, cudaStreamNonBlocking));
    PNEUMO_CUDA_CHECK(cudaEventCreateWithFlags(&state_->ready, cudaEventDisableTiming));
    PNEUMO_NCCL_CHECK(ncclCommInitRank(&state_->comm, size, id, rank));
  } catch (...) {  // no destructor for a constructor that throws: release what was made
    release();
    throw;
  }
}

void NcclCollectives::release() {
  if (state_->comm) ncclCommDestroy(state_->comm);
  if (state_->ready) cudaEventDestroy(state_->ready);
  if (state_->stream) cudaStreamDestroy(state_->stream);
  delete state_;
  state_ = nullptr;
}

NcclCollectives::~NcclCollectives() { release(); }

void NcclCollectives::allreduce_sum(float* device_values, int64_t count, double timeout_seconds) {
  start_sum(device_values, count);
  wait_started(timeout_seconds);
}

void NcclCollectives::start_sum(float* device_values, int64_t count) {
  // NCCL's stream waits for the gradients queued on the default stream.
  PNEUMO_CUDA_CHECK(cudaEventRecord(state_->ready, nullptr));
  PNEUMO_CUDA_CHECK(cudaStreamWaitEvent(state_->stream, state_->ready, 0));
  PNEUMO_NCCL_CHECK(ncclAllReduce(device_values, device_values, static_cast<size_t>(count), ncclFloat32, ncclSum,
                                  state_->comm, state_->stream));
}

void NcclCollectives::wait_started(double timeout_seconds) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const cudaError_t query = cudaStreamQuery(state_->stream);
    if (query == cudaSuccess) break;
    if (query != cudaErrorNotReady) PNEUMO_CUDA_CHECK(query);
    ncclResult_t async_error = ncclSuccess;
    PNEUMO_NCCL_CHECK(ncclCommGetAsyncError(state_->comm, &async_error));
    if (async_error != ncclSuccess && async_error != ncclInProgress) {
      ncclCommAbort(state_->comm);
      state_->comm = nullptr;
      throw Error("rank " + std::to_string(state_->rank) +
                  ": NCCL allreduce failed: " + ncclGetErrorString(async_error) + " (a rank has probably died)");
    }
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > timeout_seconds) {
      ncclCommAbort(state_->comm);
      state_->comm = nullptr;
      throw Error("rank " + std::to_string(state_->rank) + ": NCCL allreduce did not complete within " +
                  std::to_string(static_cast<int>(timeout_seconds)) + " s: a rank has died or stopped responding");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  // The default stream's later work (Adam) runs after the sums.
  PNEUMO_CUDA_CHECK(cudaEventRecord(state_->ready, state_->stream));
  PNEUMO_CUDA_CHECK(cudaStreamWaitEvent(nullptr, state_->ready, 0));
}

namespace {

// Size 1, no MPI: CUDA tensors through NCCL (a clique of one made from a local unique id), host
// buffers left as they are.
class NcclSingleProcessCommunicator final : public Communicator {
 public:
  NcclSingleProcessCommunicator() : nccl_(0, 1, NcclCollectives::make_unique_id()) {}
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  std::string name() const override { return "NCCL (one process)"; }
  void allreduce_sum(double*, int64_t) override {}
  void allreduce_sum(float*, int64_t) override {}
  void allreduce_sum(Tensor& tensor) override {
    if (tensor.device() == Device::CPU) return;
    nccl_.allreduce_sum(tensor.data(), tensor.count(), timeout_seconds_);
  }
  void start_sum(Tensor& tensor, int64_t offset, int64_t count) override {
    PNEUMO_REQUIRE(offset >= 0 && count >= 0 && offset + count <= tensor.count(),
                   "start_sum: range outside the tensor");
    if (tensor.device() == Device::CPU) return;
    nccl_.start_sum(tensor.data() + offset, count);
    started_ = true;
  }
  void wait_started_sums() override {
    if (!started_) return;
    nccl_.wait_started(timeout_seconds_);
    started_ = false;
  }
  int64_t allreduce_max(int64_t value) override { return value; }
  void broadcast(void*, int64_t, int) override {}
  void barrier(bool) override {}
  std::vector<std::string> gather(const std::string& mine, int) override { return {mine}; }

 private:
  NcclCollectives nccl_;
  bool started_ = false;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_single_process_communicator() {
  return std::make_unique<NcclSingleProcessCommunicator>();
}

}  // namespace pneumo
