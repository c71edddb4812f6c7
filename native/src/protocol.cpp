#include "protocol.hpp"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>

namespace smnas {

namespace {
std::mutex gOut;
const auto gStart = std::chrono::steady_clock::now();
bool gErrorsOnly = false;
std::string gLogPrefix = "[smnas-trainer] ";
}  // namespace

void setProcessRank(int rank, int world) {
  gErrorsOnly = rank != 0;
  if (world > 1) gLogPrefix = "[smnas-trainer rank " + std::to_string(rank) + "] ";
}

void emit(const nlohmann::json& message) {
  if (gErrorsOnly && message.value("type", "") != "error") return;
  std::lock_guard<std::mutex> lock(gOut);
  // error_handler::replace: never throw on odd bytes in a path
  std::string line = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void emitError(const std::string& kind, const std::string& message, const std::string& field) {
  nlohmann::json m = {{"type", "error"}, {"kind", kind}, {"message", message}};
  if (!field.empty()) m["field"] = field;
  emit(m);
}

void logInfo(const std::string& line) {
  std::lock_guard<std::mutex> lock(gOut);
  std::cerr << gLogPrefix << line << std::endl;
}

void logWarn(const std::string& line) {
  std::lock_guard<std::mutex> lock(gOut);
  std::cerr << gLogPrefix << "WARNING: " << line << std::endl;
}

double wallSeconds() { return std::chrono::duration<double>(std::chrono::steady_clock::now() - gStart).count(); }

double peakRssMB() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmHWM:") {
      double kb = 0;
      in >> kb;
      return kb / 1024.0;
    }
    std::string rest;
    std::getline(in, rest);
  }
  return 0;
}

}  // namespace smnas
