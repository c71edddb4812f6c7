// smnas-trainer: sets the environment that OpenMP and OpenBLAS read when they load, then execs
// the trainer, smnas-trainer-core, from the same folder. It links no libtorch. The trainer used to
// set this environment itself and exec itself again, so every run loaded libtorch twice: on the
// 2-core VM (2026-12-01) `smnas-trainer --help` took 1.9 s that way against 1.0 s with one load,
// and a campaign, the latency benchmark and the test suite start the trainer hundreds of times.
// `smnas-trainer --version` prints the build id (launcher and trainer files) without loading it.
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "launcher.hpp"
#include "protocol.hpp"

using namespace smnas;

// Settings that the math libraries read once, when they load: set the missing ones. Each was
// measured on the project's 2-core VM; an explicit value in the environment always wins.
static void setRuntimeEnvironment() {
  auto setDefault = [](const char* name, const char* value) {
    if (!std::getenv(name)) setenv(name, value, 1);
  };
  // OpenMP threads wait for the next parallel region by spinning (libgomp: 300k spins) or by
  // sleeping (PASSIVE). Measured on the 2-core VM: on a machine already loaded (load average 8),
  // the default spinning burnt ~85 % of the time (8 iterations 112 s -> 17 s with PASSIVE); on an
  // idle one, PASSIVE made training 1.4x slower than a short spin (12.3 vs 17.5 images/s with
  // 10k spins), because a step runs thousands of short parallel regions. So: spin briefly, and
  // sleep only when the load average is at least twice the cores (10k spins cost 1.45x PASSIVE's
  // time with 3 runs sharing the 2 cores; a lower bar would also trip on the trailing load of the
  // previous run and make timings depend on history).
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT")) {
    double load = 0;
    if (FILE* f = std::fopen("/proc/loadavg", "r")) {
      if (std::fscanf(f, "%lf", &load) != 1) load = 0;
      std::fclose(f);
    }
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus > 0 && load >= 2.0 * static_cast<double>(cpus))
      setDefault("OMP_WAIT_POLICY", "PASSIVE");
    else
      setDefault("GOMP_SPINCOUNT", "10000");
  }
  // OpenBLAS (Debian's libtorch) picks its kernels from the CPU model and falls back to the SSE3
  // "Prescott" ones for a model it does not know, as on this VM's "Intel Xeon Processor": a
  // 512x3136x256 GEMM took 14.7 ms instead of 3.0 ms (SkylakeX). Name the family from the CPU's
  // own feature flags. Its thread pool waits with sched_yield, competing with OpenMP's threads for
  // the same cores; the FC GEMMs are small enough to run on one.
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl"))
    setDefault("OPENBLAS_CORETYPE", "SkylakeX");
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    setDefault("OPENBLAS_CORETYPE", "Haswell");
#endif
  setDefault("OPENBLAS_NUM_THREADS", "1");
}

int main(int argc, char** argv) {
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) {
    emitError("internal", std::string("smnas-trainer: cannot read /proc/self/exe (") + std::strerror(errno) + ")");
    return kInternal;
  }
  self[n] = '\0';
  const std::string launcher(self), core = launcher.substr(0, launcher.rfind('/') + 1) + kTrainerCoreName;
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    try {
      std::printf("%s\n", trainerBuildId(launcher, core).c_str());
      return kOk;
    } catch (const std::exception& e) {
      emitError("internal", e.what());
      return kInternal;
    }
  }
  setRuntimeEnvironment();
  setenv(kLauncherEnv, launcher.c_str(), 1);
  execv(core.c_str(), argv);
  emitError("internal",
            "smnas-trainer: cannot start " + core + " (" + std::strerror(errno) + "); build it with cmake --build native/build");
  return kInternal;
}
