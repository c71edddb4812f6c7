// The launcher smnas-trainer (src/launcher.cpp) and the trainer smnas-trainer-core it execs from
// the same folder. Torch-free (smnas_core).
#pragma once
#include <string>

namespace smnas {

// the trainer's file name, next to the launcher
inline constexpr const char* kTrainerCoreName = "smnas-trainer-core";

// set by the launcher to its own path: the trainer knows it was launched, and hashes the launcher
// into its build id
inline constexpr const char* kLauncherEnv = "SMNAS_LAUNCHER";

// "sha256:<64 hex>" identifying a build: over the launcher's and the trainer's files, or the
// trainer's alone when `launcherPath` is empty (started directly). Throws naming a missing file.
std::string trainerBuildId(const std::string& launcherPath, const std::string& corePath);

}  // namespace smnas
