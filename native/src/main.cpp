// smnas-trainer <train|eval|bench|describe|classify-train|classify-eval> --job <job.json>
// stdout: JSON lines only (protocol/trainer-messages.ts); logs on stderr; exit codes as TrainerExit.
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

int main(int argc, char** argv) {
  // libgomp spin-waits by default; on a shared, oversubscribed CPU that burnt ~85% of the time
  // (measured: 8 iterations 112 s -> 17 s). The policy is read when libgomp loads, so re-exec once.
  if (!std::getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);  // on failure just continue with the default policy
  }
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
