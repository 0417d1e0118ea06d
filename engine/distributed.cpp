// The launcher detection and the choice of communicator (engine/distributed.h); the MPI and NCCL
// implementations are in engine/mpi_communicator.cpp and engine/nccl_communicator.cpp.
#include "engine/distributed.h"

#include <algorithm>
#include <cstdlib>

#include "engine/check.h"

namespace pneumo {

namespace {
// The integer value of environment variable `name`, or -1 when unset or not a number.
int environment_integer(const char* name) {
  const char* text = std::getenv(name);
  if (!text || !*text) return -1;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  return (*end == '\0' && value >= 0) ? static_cast<int>(value) : -1;
}
}  // namespace

LaunchInfo detect_launch() {
  LaunchInfo info;
  struct Source {
    const char* size;
    const char* rank;
    const char* launcher;
  };
  for (const Source& source : {Source{"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "mpirun (Open MPI)"},
                               Source{"PMIX_SIZE", "PMIX_RANK", "PMIx"}, Source{"PMI_SIZE", "PMI_RANK", "PMI"},
                               Source{"SLURM_NTASKS", "SLURM_PROCID", "srun (Slurm)"}}) {
    const int size = environment_integer(source.size);
    if (size < 1) continue;
    // Slurm sets SLURM_NTASKS inside an allocation (sbatch/salloc) too; only srun's tasks have
    // SLURM_STEP_ID as well.
    if (std::string(source.size) == "SLURM_NTASKS" && !std::getenv("SLURM_STEP_ID")) continue;
    info.world_size = size;
    info.rank = std::max(0, environment_integer(source.rank));
    info.launcher = source.launcher;
    info.under_launcher = size > 1;
    return info;
  }
  return info;
}

bool mpi_compiled() {
#ifdef PNEUMO_HAVE_MPI
  return true;
#else
  return false;
#endif
}

void Communicator::start_sum(Tensor& tensor, int64_t offset, int64_t count) {
  PNEUMO_REQUIRE(offset >= 0 && count >= 0 && offset + count <= tensor.count(), "start_sum: range outside the tensor");
  Tensor part = Tensor::view(tensor.data() + offset, tensor.device(), {count});  // (count)
  allreduce_sum(part);
}

bool nccl_compiled() {
#ifdef PNEUMO_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Communicator> make_communicator(Device device) {
  const LaunchInfo launch = detect_launch();
  if (!launch.under_launcher) return std::make_unique<SingleProcessCommunicator>();
  if (!mpi_compiled())
    throw Error("launched by " + launch.launcher + " as rank " + std::to_string(launch.rank) + " of " +
                std::to_string(launch.world_size) + ", but this pneumo was built without MPI: it would train " +
                std::to_string(launch.world_size) +
                " independent copies. Install Open MPI (libopenmpi-dev) and rebuild, or run one process");
  if (device == Device::CUDA && !nccl_compiled())
    throw Error(
        "data-parallel training on CUDA needs NCCL, and this pneumo was built without it "
        "(nccl.h and libnccl not found at configure time; set -DNCCL_ROOT=DIR)");
#ifdef PNEUMO_HAVE_MPI
  return make_mpi_communicator(device == Device::CUDA);
#else
  return nullptr;
#endif
}

#ifndef PNEUMO_HAVE_NCCL
std::unique_ptr<Communicator> make_nccl_single_process_communicator() {
  throw Error(
      "this pneumo was built without NCCL (nccl.h and libnccl not found at configure time; set -DNCCL_ROOT=DIR)");
}
#endif

int cpu_threads_for_rank(int hardware_threads, int local_rank, int local_size) {
  PNEUMO_REQUIRE(
      local_size >= 1 && local_rank >= 0 && local_rank < local_size,
      "cpu_threads_for_rank: local rank " + std::to_string(local_rank) + " of " + std::to_string(local_size));
  const int hardware = std::max(1, hardware_threads);
  const int share = hardware / local_size, extra = hardware % local_size;
  return std::max(1, share + (local_rank < extra ? 1 : 0));
}

}  // namespace pneumo
