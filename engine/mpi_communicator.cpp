// The MPI communicator (engine/distributed.h), with NCCL for device tensors in NCCL builds.
// Errors return (MPI_ERRORS_RETURN) and become pneumo::Error naming the call; a watchdog thread
// stops the rank when a collective has not completed within the timeout, so a dead rank never
// leaves the others waiting forever.
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "engine/check.h"
#include "engine/distributed.h"
#ifdef PNEUMO_HAVE_NCCL
#include <cuda_runtime.h>

#include "engine/cuda_check.h"
#include "engine/nccl_communicator.h"
#endif

namespace pneumo {

namespace {

class MpiCommunicator final : public Communicator {
 public:
  explicit MpiCommunicator(bool with_nccl) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);  // only this thread calls MPI
      owns_mpi_ = true;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local_),
          "MPI_Comm_split_type");
    MPI_Comm_rank(local_, &local_rank_);
    MPI_Comm_size(local_, &local_size_);
    if (const char* timeout = std::getenv("PNEUMO_COLLECTIVE_TIMEOUT")) timeout_seconds_ = std::atof(timeout);
#ifdef PNEUMO_HAVE_NCCL
    if (with_nccl) {
      int devices = 0;
      PNEUMO_CUDA_CHECK(cudaGetDeviceCount(&devices));
      if (local_rank_ >= devices)
        throw Error("rank " + std::to_string(rank_) + " is local rank " + std::to_string(local_rank_) +
                    " but this machine has " + std::to_string(devices) + " GPU(s): start at most one rank per GPU");
      PNEUMO_CUDA_CHECK(cudaSetDevice(local_rank_));
      std::string id = rank_ == 0 ? NcclCollectives::make_unique_id() : std::string();
      id.resize(128);
      broadcast(id.data(), static_cast<int64_t>(id.size()), 0);
      nccl_ = std::make_unique<NcclCollectives>(rank_, size_, id);
    }
#else
    (void)with_nccl;
#endif
    watchdog_ = std::thread([this] { watch(); });  // last: a throw above leaves no thread behind
  }

  ~MpiCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    watchdog_.join();
#ifdef PNEUMO_HAVE_NCCL
    nccl_.reset();
#endif
    MPI_Comm_free(&local_);
    if (owns_mpi_) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  std::string name() const override {
#ifdef PNEUMO_HAVE_NCCL
    if (nccl_) return "MPI + NCCL";
#endif
    return "MPI";
  }

  void allreduce_sum(double* values, int64_t count) override {
    Watched watched(*this, "allreduce of doubles");
    check(MPI_Allreduce(MPI_IN_PLACE, values, int_count(count), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  }
  void allreduce_sum(float* values, int64_t count) override {
    Watched watched(*this, "allreduce of floats");
    check(MPI_Allreduce(MPI_IN_PLACE, values, int_count(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  }
  void allreduce_sum(Tensor& tensor) override {
    if (tensor.device() == Device::CPU) return allreduce_sum(tensor.data(), tensor.count());
#ifdef PNEUMO_HAVE_NCCL
    if (nccl_) return nccl_->allreduce_sum(tensor.data(), tensor.count(), timeout_seconds_);
#endif
    throw Error("allreduce of a CUDA tensor needs the NCCL communicator (this job has " + name() + ")");
  }
  void start_sum(Tensor& tensor, int64_t offset, int64_t count) override {
    PNEUMO_REQUIRE(offset >= 0 && count >= 0 && offset + count <= tensor.count(),
                   "start_sum: range outside the tensor");
    if (tensor.device() == Device::CPU) {
      started_.emplace_back();
      check(MPI_Iallreduce(MPI_IN_PLACE, tensor.data() + offset, int_count(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                           &started_.back()),
            "MPI_Iallreduce");
      return;
    }
#ifdef PNEUMO_HAVE_NCCL
    if (nccl_) {
      nccl_->start_sum(tensor.data() + offset, count);
      nccl_started_ = true;
      return;
    }
#endif
    Communicator::start_sum(tensor, offset, count);
  }
  void progress() override {
    if (started_.empty()) return;
    int done = 0;
    check(MPI_Testall(static_cast<int>(started_.size()), started_.data(), &done, MPI_STATUSES_IGNORE), "MPI_Testall");
  }
  void wait_started_sums() override {
    if (!started_.empty()) {
      Watched watched(*this, "allreduce of the gradient buckets");
      check(MPI_Waitall(static_cast<int>(started_.size()), started_.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
      started_.clear();
    }
#ifdef PNEUMO_HAVE_NCCL
    if (nccl_started_) {
      nccl_->wait_started(timeout_seconds_);
      nccl_started_ = false;
    }
#endif
  }
  int64_t allreduce_max(int64_t value) override {
    Watched watched(*this, "allreduce of the stop flag");
    long long in_out = value;
    check(MPI_Allreduce(MPI_IN_PLACE, &in_out, 1, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
    return in_out;
  }
  void broadcast(void* data, int64_t bytes, int root) override {
    Watched watched(*this, "broadcast");
    check(MPI_Bcast(data, int_count(bytes), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
  }
  void barrier(bool bounded) override {
    Watched watched(*this, "barrier", bounded);
    check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  }
  std::vector<std::string> gather(const std::string& mine, int root) override {
    Watched watched(*this, "gather");
    int my_size = int_count(static_cast<int64_t>(mine.size()));
    std::vector<int> sizes(rank_ == root ? size_ : 0), offsets(sizes.size());
    check(MPI_Gather(&my_size, 1, MPI_INT, sizes.data(), 1, MPI_INT, root, MPI_COMM_WORLD), "MPI_Gather");
    std::string all;
    int64_t total = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      offsets[i] = static_cast<int>(total);
      total += sizes[i];
    }
    if (rank_ == root) all.resize(static_cast<size_t>(int_count(total)));
    check(MPI_Gatherv(mine.data(), my_size, MPI_BYTE, all.data(), sizes.data(), offsets.data(), MPI_BYTE, root,
                      MPI_COMM_WORLD),
          "MPI_Gatherv");
    std::vector<std::string> parts;
    for (size_t i = 0; i < sizes.size(); ++i) parts.push_back(all.substr(offsets[i], sizes[i]));
    return parts;
  }

 private:
  // Marks a collective in progress for the watchdog.
  struct Watched {
    Watched(MpiCommunicator& owner, const char* what, bool bounded = true) : owner_(owner) {
      owner_.current_ = what;
      owner_.started_ns_ = bounded ? now_ns() : 0;
    }
    ~Watched() { owner_.started_ns_ = 0; }
    MpiCommunicator& owner_;
  };
  static int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  // Stops this rank when one collective has waited longer than the timeout: the job cannot go
  // on, and mpirun then ends the other ranks and names the one that died.
  void watch() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!wake_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping_; })) {
      const int64_t started = started_ns_;
      if (started == 0 || timeout_seconds_ <= 0) continue;
      const double waited = static_cast<double>(now_ns() - started) * 1e-9;
      if (waited > timeout_seconds_) {
        std::fprintf(stderr,
                     "pneumo: error: rank %d: the %s with the other ranks did not complete within %.0f s "
                     "(PNEUMO_COLLECTIVE_TIMEOUT): a rank has died or stopped responding; stopping. The last "
                     "checkpoint on disk is intact.\n",
                     rank_, current_.load(), timeout_seconds_);
        std::fflush(stderr);
        std::_Exit(1);
      }
    }
  }
  int int_count(int64_t count) const {
    if (count < 0 || count > 2147483647LL)
      throw Error("MPI: a message of " + std::to_string(count) + " elements is larger than MPI's int count");
    return static_cast<int>(count);
  }
  void check(int code, const char* call) const {
    if (code == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    MPI_Error_string(code, text, &length);
    throw Error("rank " + std::to_string(rank_) + ": " + call + " failed: " + std::string(text, length) +
                " (a rank has probably died)");
  }

  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  bool owns_mpi_ = false;
  MPI_Comm local_ = MPI_COMM_NULL;
  std::atomic<int64_t> started_ns_{0};
  std::atomic<const char*> current_{""};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread watchdog_;
  std::vector<MPI_Request> started_;  // the CPU gradient buckets started by start_sum
#ifdef PNEUMO_HAVE_NCCL
  std::unique_ptr<NcclCollectives> nccl_;
  bool nccl_started_ = false;
#endif
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(bool with_nccl) {
  return std::make_unique<MpiCommunicator>(with_nccl);
}

}  // namespace pneumo
