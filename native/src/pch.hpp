// Precompiled header of every libtorch translation unit (torch/torch.h alone costs ~17 s per TU).
#pragma once
#include <torch/torch.h>
#include <nlohmann/json.hpp>
