// smnas-trainer <train|eval|bench|describe|export|classify-train|classify-eval|classify> --job <job.json>
// stdout: JSON lines only (protocol/trainer-messages.ts); logs on stderr; exit codes as TrainerExit.
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "commands.hpp"
#include "dist.hpp"
#include "environment.hpp"
#include "protocol.hpp"
#include "runtime.hpp"

using namespace smnas;

static const char* kUsage =
    "usage: smnas-trainer <train|eval|bench|describe|export|classify-train|classify-eval|classify> --job <job.json>\n"
    "       smnas-trainer env [--device cpu|cuda:<i>]   (where a measurement runs: device model, runtime, trainer build)\n"
    "  The job file is defined by protocol/job.ts (JSON Schema: native/schema/job.schema.json).\n"
    "  stdout carries JSON lines (started, progress, checkpoint, metrics, result, error); logs go to stderr.\n"
    "  exit codes: 0 ok, 1 internal, 2 invalid job, 3 bad data, 4 diverged, 5 interrupted (SIGTERM; checkpoint written),\n  6 peer lost "
    "(data-parallel: another process died or a collective timed out; retry from the checkpoint).\n  Data-parallel: N processes of one job "
    "with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (torchrun's variables) or job.distributed.\n";

// Settings that the math libraries read once, when they load: set the missing ones and re-exec
// once (SMNAS_ENV_SET guards against a loop). Each was measured on the project's 2-core VM; an
// explicit value in the environment always wins.
static bool setRuntimeEnvironment() {
  if (std::getenv("SMNAS_ENV_SET")) return false;
  bool changed = false;
  auto setDefault = [&](const char* name, const char* value) {
    if (std::getenv(name)) return;
    setenv(name, value, 1);
    changed = true;
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
  if (changed) setenv("SMNAS_ENV_SET", "1", 1);
  return changed;
}

int main(int argc, char** argv) {
  if (setRuntimeEnvironment()) execv("/proc/self/exe", argv);  // on failure just continue with the defaults
  // libtorch frees and reallocates the same activation-sized blocks every iteration; glibc would
  // hand the heap top back to the kernel each time and page-fault it in again. Keep up to 1 GiB.
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  std::string command, jobPath, device;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (a == "--job" && i + 1 < argc) {
      jobPath = argv[++i];
    } else if (a == "--device" && i + 1 < argc && command == "env") {
      device = argv[++i];
    } else if (command.empty() && a.rfind("--", 0) != 0) {
      command = a;
    } else {
      std::cerr << kUsage;
      emitError("invalid_job", "unexpected argument '" + a + "'");
      return kInvalidJob;
    }
  }
  if (command == "env") {
    try {
      return envCommand(device);
    } catch (const JobError& e) {
      emitError("invalid_job", std::string(e.what()), e.field);
      return kInvalidJob;
    } catch (const std::exception& e) {
      std::string msg = e.what();
      emitError("internal", msg.substr(0, msg.find('\n')));
      return kInternal;
    }
  }
  if (command.empty() || jobPath.empty()) {
    std::cerr << kUsage;
    emitError("invalid_job", "a command and --job <file> are required");
    return kInvalidJob;
  }
  installSignalHandlers();
  try {
    Job job = loadJobFile(jobPath);
    if (job.command != command)
      throw JobError("command", "the job is a '" + job.command + "' job but the trainer was asked to '" + command + "'");
    return job.classification ? runClassification(job) : runDetection(job);
  } catch (const JobError& e) {
    logWarn(std::string("invalid job ") + jobPath + ": " + e.field + ": " + e.what());
    emitError("invalid_job", std::string(e.what()), e.field);
    return kInvalidJob;
  } catch (const BadData& e) {
    logWarn(std::string("bad data: ") + e.what());
    emitError("bad_data", e.what(), e.record);
    return kBadData;
  } catch (const PeerLost& e) {
    logWarn(e.what());
    emitError("peer_lost", e.what());
    // c10d's threads may still wait on the dead peer: leave without running destructors
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(kPeerLost);
  } catch (const Interrupted& e) {
    logWarn(e.what());
    emitError("interrupted", e.what());
    return kInterrupted;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    logWarn("internal error: " + msg);
    emitError("internal", msg.substr(0, msg.find('\n')));
    return kInternal;
  }
}
