// Communicator: the collectives of data-parallel training (engine/distributed.md). Every rank
// runs the same program on its slice of each global batch; these calls are where the ranks
// meet. Data flows in place: allreduce_sum leaves the sum over all ranks in every rank's buffer.
//
// Four implementations:
//   single process  size 1; every collective is a no-op (the trainer of one process)
//   NCCL, one rank  size 1 without MPI: CUDA tensors through NCCL (tests on one GPU)
//   MPI             engine/mpi_communicator.cpp (Open MPI); host buffers, and the CPU back end's
//                   tensors; launched by mpirun / srun
//   MPI + NCCL      engine/nccl_communicator.cpp: MPI for host collectives and the NCCL
//                   bootstrap, NCCL for CUDA tensors (one GPU per rank: the local rank's)
// Every collective of the MPI implementations is watched: one that has not completed after
// timeout_seconds() (a rank died or hangs) stops this rank with a message naming the collective,
// instead of waiting forever.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/tensor.h"

namespace pneumo {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;          // 0 .. size-1
  virtual int size() const = 0;          // ranks in the job
  virtual int local_rank() const = 0;    // rank among the ranks of this machine
  virtual int local_size() const = 0;    // ranks on this machine
  virtual std::string name() const = 0;  // "single process", "MPI", "MPI + NCCL"
  bool is_root() const { return rank() == 0; }

  // In-place sums over the ranks of host buffers (every rank passes the same count).
  virtual void allreduce_sum(double* values, int64_t count) = 0;
  virtual void allreduce_sum(float* values, int64_t count) = 0;
  // In-place sum over the ranks of a tensor on its device: host memory through MPI on the CPU,
  // device memory through NCCL on CUDA (throws when the build or the job has no NCCL).
  virtual void allreduce_sum(Tensor& tensor) = 0;
  // Gradient buckets overlapped with the backward pass (train_step, when
  // gradient_bucket_floats() > 0): start_sum starts an in-place sum over the ranks of
  // tensor[offset, offset + count), progress lets started sums advance between layers, and
  // wait_started_sums completes all of them. This default sums at once (no overlap); MPI uses
  // MPI_Iallreduce on the CPU and NCCL on its own stream on the GPU.
  virtual void start_sum(Tensor& tensor, int64_t offset, int64_t count);
  virtual void progress() {}
  virtual void wait_started_sums() {}
  // 0 (the default): train_step sums the whole gradient buffer in one call after the backward
  // pass; > 0: in buckets of about this many floats as the layers' gradients become ready.
  void set_gradient_bucket_floats(int64_t floats) { gradient_bucket_floats_ = floats; }
  int64_t gradient_bucket_floats() const { return gradient_bucket_floats_; }

  // Largest value over the ranks (the stop flag of Ctrl-C: everyone stops at the same step).
  virtual int64_t allreduce_max(int64_t value) = 0;
  // Copies `bytes` bytes of root's buffer into every rank's buffer.
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  // Every rank waits until all have arrived. bounded=false waits without the timeout (e.g. for
  // rank 0 building the image cache, which may take many minutes).
  virtual void barrier(bool bounded = true) = 0;
  // Gathers each rank's byte string at `root` (in rank order); other ranks get an empty vector.
  virtual std::vector<std::string> gather(const std::string& mine, int root) = 0;

  void set_timeout_seconds(double seconds) { timeout_seconds_ = seconds; }
  double timeout_seconds() const { return timeout_seconds_; }

 protected:
  double timeout_seconds_ = 300;
  int64_t gradient_bucket_floats_ = 0;
};

// Size 1: every collective leaves its buffer as it is.
class SingleProcessCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  std::string name() const override { return "single process"; }
  void allreduce_sum(double*, int64_t) override {}
  void allreduce_sum(float*, int64_t) override {}
  void allreduce_sum(Tensor&) override {}
  int64_t allreduce_max(int64_t value) override { return value; }
  void broadcast(void*, int64_t, int) override {}
  void barrier(bool) override {}
  std::vector<std::string> gather(const std::string& mine, int) override { return {mine}; }
};

// How this process was started, from the environment of the launchers (Open MPI's
// OMPI_COMM_WORLD_*, PMI/PMIx's PMI_*, Slurm's SLURM_* under srun, MPICH's MPI_LOCALNRANKS).
struct LaunchInfo {
  bool under_launcher = false;  // started by mpirun / srun with more than one rank
  int world_size = 1;
  int rank = 0;
  std::string launcher;  // "mpirun (Open MPI)", "PMI", "srun (Slurm)", "" when none
};
LaunchInfo detect_launch();

bool mpi_compiled();   // this binary has the MPI implementation
bool nccl_compiled();  // this binary has the NCCL implementation

// The communicator of this process: single process when not launched by mpirun/srun (or when
// launched with one rank); MPI (+ NCCL for device = CUDA) otherwise. Launched with several
// ranks by a binary built without MPI: throws pneumo::Error saying so (rather than training N
// independent copies). MPI is initialized here and finalized when the communicator is destroyed.
std::unique_ptr<Communicator> make_communicator(Device device);

// The thread count a CPU rank takes: its share of the machine's hardware threads,
// max(1, hardware / local_size) (the first hardware % local_size local ranks take one more).
int cpu_threads_for_rank(int hardware_threads, int local_rank, int local_size);

#ifdef PNEUMO_HAVE_MPI
std::unique_ptr<Communicator> make_mpi_communicator(bool with_nccl);
#endif

// One process, one GPU, NCCL for CUDA tensors without MPI (the unique id made locally): every
// NCCL call of the data-parallel step (allreduce, buckets started on NCCL's stream and waited
// for) runs on a single GPU, on a machine without Open MPI. Host collectives leave their buffers
// as they are (one rank). Throws pneumo::Error in a build without NCCL.
std::unique_ptr<Communicator> make_nccl_single_process_communicator();

}  // namespace pneumo
