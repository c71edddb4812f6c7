// Where a measurement ran: the device model, the runtime (libtorch, CUDA runtime and driver) and
// the trainer build (SHA-256 of the running binary). `bench` reports it with its timings and
// `smnas-trainer env --device <d>` prints it alone (the latency activity keys its cache by it).
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>

namespace smnas {

// {deviceKind, deviceModel, runtime, libtorch, cuda?: {runtime, driver}, trainerVersion, threads}
nlohmann::json runtimeEnvironment(const torch::Device& dev);

// `smnas-trainer env [--device cpu|cuda:<i>]`: one `result` line with the environment; exit code
int envCommand(const std::string& device);

}  // namespace smnas
