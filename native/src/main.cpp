// smnas-trainer-core: the trainer itself, exec'd by the launcher smnas-trainer (src/launcher.cpp).
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
#include "launcher.hpp"
#include "protocol.hpp"
#include "runtime.hpp"

using namespace smnas;

static const char* kUsage =
    "usage: smnas-trainer <train|eval|bench|describe|export|classify-train|classify-eval|classify> --job <job.json>\n"
    "       smnas-trainer env [--device cpu|cuda:<i>]   (where a measurement runs: device model, runtime, trainer build)\n"
    "       smnas-trainer --version   (the build id: sha256 over this launcher and smnas-trainer-core)\n"
    "  The job file is defined by protocol/job.ts (JSON Schema: native/schema/job.schema.json).\n"
    "  stdout carries JSON lines (started, progress, checkpoint, metrics, result, error); logs go to stderr.\n"
    "  exit codes: 0 ok, 1 internal, 2 invalid job, 3 bad data, 4 diverged, 5 interrupted (SIGTERM; checkpoint written),\n  6 peer lost "
    "(data-parallel: another process died or a collective timed out; retry from the checkpoint).\n  Data-parallel: N processes of one job "
    "with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT (torchrun's variables) or job.distributed.\n";

int main(int argc, char** argv) {
  // bin/smnas-trainer (src/launcher.cpp) sets the math libraries' environment before exec'ing this
  // program; started any other way they run with their own defaults (slower, never wrong)
  if (!std::getenv(kLauncherEnv))
    logWarn(std::string("started without the smnas-trainer launcher: OpenMP and OpenBLAS run with their own defaults (") + kLauncherEnv +
            " is not set; native/README.md, \"Runtime environment\")");
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
