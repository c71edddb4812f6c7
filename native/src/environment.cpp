#include "environment.hpp"

#include <fstream>

#include "checksum.hpp"
#include "protocol.hpp"
#include "runtime.hpp"

// The CUDA device's name and the CUDA runtime / driver versions: only where Torch has CUDA and
// its ATen/cuda and CUDA runtime headers are there (as runtime.cpp's allocator statistics).
#if defined(SMNAS_WITH_CUDA) && __has_include(<ATen/cuda/CUDAContext.h>) && __has_include(<cuda_runtime_api.h>)
#include <ATen/cuda/CUDAContext.h>
#include <cuda_runtime_api.h>
#define SMNAS_CUDA_PROPERTIES 1
#else
#define SMNAS_CUDA_PROPERTIES 0
#endif

namespace smnas {
namespace {

std::string cpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    return v;
  }
  return "unknown CPU";
}

#if SMNAS_CUDA_PROPERTIES
std::string versionString(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }
#endif

// The identity of this trainer build: a different build (another commit, compiler, libtorch) has
// another binary. Computed once per process.
std::string trainerVersion() {
  static const std::string v = [] {
    try {
      return "sha256:" + sha256File("/proc/self/exe");
    } catch (const std::exception& e) {
      logWarn(std::string("cannot hash the trainer binary: ") + e.what());
      return std::string("unknown");
    }
  }();
  return v;
}

}  // namespace

nlohmann::json runtimeEnvironment(const torch::Device& dev) {
  nlohmann::json env = {{"deviceKind", dev.is_cuda() ? "cuda" : "cpu"},
                        {"libtorch", TORCH_VERSION},
                        {"trainerVersion", trainerVersion()},
                        {"threads", at::get_num_threads()}};
  std::string runtime = std::string("libtorch ") + TORCH_VERSION;
  if (dev.is_cuda()) {
#if SMNAS_CUDA_PROPERTIES
    const cudaDeviceProp* prop = at::cuda::getDeviceProperties(dev.index());
    env["deviceModel"] = std::string(prop->name);
    int rt = 0, drv = 0;
    cudaRuntimeGetVersion(&rt);
    cudaDriverGetVersion(&drv);
    env["cuda"] = {{"runtime", versionString(rt)}, {"driver", versionString(drv)}};
    runtime += ", CUDA runtime " + versionString(rt) + ", driver " + versionString(drv);
#else
    // a CUDA build without the headers that name the device: say so rather than guess
    env["deviceModel"] = "unknown CUDA device";
    runtime += ", CUDA (version unknown)";
#endif
  } else {
    env["deviceModel"] = cpuModel();
  }
  env["runtime"] = runtime;
  return env;
}

int envCommand(const std::string& device) {
  Job job;
  job.command = "env";
  job.device = device.empty() ? "cpu" : device;
  job.threads = 0;
  job.seed = 0;
  if (job.device != "cpu" && job.device.rfind("cuda:", 0) != 0) throw JobError("device", "'" + job.device + "': expected cpu or cuda:<i>");
  torch::Device dev = setupDevice(job, 0);
  const double t0 = wallSeconds();
  emit({{"type", "result"},
        {"kind", "ok"},
        {"command", "env"},
        {"wallSeconds", wallSeconds() - t0},
        {"environment", runtimeEnvironment(dev)}});
  return kOk;
}

}  // namespace smnas
