// The stdout protocol (protocol/trainer-messages.ts): one JSON object per line, nothing else on
// stdout. Human logs go to stderr through logInfo/logWarn.
#pragma once
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace smnas {

// Exit codes (TrainerExit in protocol/trainer-messages.ts).
// kPeerLost: another process of a data-parallel training died or timed out (retryable).
enum Exit : int { kOk = 0, kInternal = 1, kInvalidJob = 2, kBadData = 3, kDiverged = 4, kInterrupted = 5, kPeerLost = 6 };

// Data problems (a missing image, a malformed annotation): reported as kind bad_data, exit 3.
struct BadData : std::runtime_error {
  std::string record;
  BadData(std::string rec, const std::string& msg) : std::runtime_error(msg), record(std::move(rec)) {}
};

// Thrown by the training loop when SIGTERM arrived and a checkpoint was written.
struct Interrupted : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void emit(const nlohmann::json& message);
// Data-parallel: only rank 0 speaks the protocol (ranks > 0 emit error messages only); logs name the rank.
void setProcessRank(int rank, int world);
void emitError(const std::string& kind, const std::string& message, const std::string& field = "");
void logInfo(const std::string& line);
void logWarn(const std::string& line);

// Wall-clock seconds since process start (steady clock).
double wallSeconds();

// Peak resident set size of this process in MB (VmHWM), CPU memory.
double peakRssMB();

}  // namespace smnas
