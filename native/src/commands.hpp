// Entry points of the trainer's commands (main.cpp dispatches; each returns the exit code).
#pragma once
#include "job.hpp"

namespace smnas {
int runDetection(const Job& job);       // train | eval | bench | describe
int runClassification(const Job& job);  // classify-train | classify-eval | classify
}  // namespace smnas
