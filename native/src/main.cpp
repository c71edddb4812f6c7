// smnas-trainer <train|eval|bench|describe|classify-train|classify-eval> --job <job.json>
// stdout: JSON lines only (protocol/trainer-messages.ts); logs on stderr; exit codes as TrainerExit.
#include <malloc.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "commands.hpp"
#include "protocol.hpp"
#include "runtime.hpp"

using namespace smnas;

static const char* kUsage =
    "usage: smnas-trainer <train|eval|bench|describe|classify-train|classify-eval> --job <job.json>\n"
    "  The job file is defined by protocol/job.ts (JSON Schema: native/schema/job.schema.json).\n"
    "  stdout carries JSON lines (started, progress, checkpoint, metrics, result, error); logs go to stderr.\n"
    "  exit codes: 0 ok, 1 internal, 2 invalid job, 3 bad data, 4 diverged, 5 interrupted (SIGTERM; checkpoint written).\n";

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
  // libgomp spin-waits by default; on a shared, oversubscribed CPU that burnt ~85% of the time
  // (measured: 8 iterations 112 s -> 17 s).
  setDefault("OMP_WAIT_POLICY", "PASSIVE");
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
  std::string command, jobPath;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (a == "--job" && i + 1 < argc) {
      jobPath = argv[++i];
    } else if (command.empty() && a.rfind("--", 0) != 0) {
      command = a;
    } else {
      std::cerr << kUsage;
      emitError("invalid_job", "unexpected argument '" + a + "'");
      return kInvalidJob;
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
    if (job.command != command) throw JobError("command", "the job is a '" + job.command + "' job but the trainer was asked to '" + command + "'");
    return job.classification ? runClassification(job) : runDetection(job);
  } catch (const JobError& e) {
    logWarn(std::string("invalid job ") + jobPath + ": " + e.field + ": " + e.what());
    emitError("invalid_job", std::string(e.what()), e.field);
    return kInvalidJob;
  } catch (const BadData& e) {
    logWarn(std::string("bad data: ") + e.what());
    emitError("bad_data", e.what(), e.record);
    return kBadData;
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
