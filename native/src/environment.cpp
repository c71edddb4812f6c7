#include "environment.hpp"

#include "launcher.hpp"

#include <dlfcn.h>

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

[[maybe_unused]] std::string versionString(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }

// The CUDA driver's version through the driver library itself (libcuda.so.1, present wherever a GPU
// is usable), looked up at run time: no link dependency on the CUDA runtime. 0 when unknown.
[[maybe_unused]] int cudaDriverVersion() {
  void* lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (!lib) return 0;
  using GetVersion = int (*)(int*);
  auto fn = reinterpret_cast<GetVersion>(dlsym(lib, "cuDriverGetVersion"));
  int v = 0;
  if (!fn || fn(&v) != 0) v = 0;
  dlclose(lib);
  return v;
}

// The identity of this trainer build: a different build (another commit, compiler, libtorch) has
// other binaries. Computed once per process; `smnas-trainer --version` prints the same.
std::string trainerVersion() {
  static const std::string v = [] {
    try {
      const char* launcher = std::getenv(kLauncherEnv);
      return trainerBuildId(launcher ? launcher : "", "/proc/self/exe");
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
    // the runtime Torch was built with (CUDART_VERSION), the driver as the driver library reports it
    const int rt = CUDART_VERSION, drv = cudaDriverVersion();
    const std::string driver = drv > 0 ? versionString(drv) : std::string("unknown");
    env["cuda"] = {{"runtime", versionString(rt)}, {"driver", driver}};
    runtime += ", CUDA runtime " + versionString(rt) + ", driver " + driver;
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
