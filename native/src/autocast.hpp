// Mixed precision (recipe.mixedPrecision) behind one small shim: libtorch 1.13 and 2.0-2.3 have a
// per-backend autocast API (set_enabled for CUDA, set_cpu_enabled, set_autocast_gpu_dtype /
// set_autocast_cpu_dtype); 2.4+ has set_autocast_enabled(device type, bool) and
// set_autocast_dtype(device type, dtype) and deprecates the old names (they warn). Autocast state is
// thread-local: the guard must live in the thread that runs the forward pass.
#pragma once
#include <ATen/autocast_mode.h>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>
#include <torch/version.h>

#include <stdexcept>
#include <string>

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define SMNAS_AUTOCAST_DEVICE_API 1
#else
#define SMNAS_AUTOCAST_DEVICE_API 0
#endif

namespace smnas {

// "off" | "bf16" | "fp16" (the recipe's mixedPrecision) -> the autocast dtype; false for "off".
inline bool autocastDtypeFor(const std::string& mode, at::ScalarType& dtype) {
  if (mode == "bf16")
    dtype = at::kBFloat16;
  else if (mode == "fp16")
    dtype = at::kHalf;
  else
    return false;
  return true;
}

namespace autocast_shim {
inline void checkDevice(c10::DeviceType d) {
  if (d != c10::DeviceType::CPU && d != c10::DeviceType::CUDA) throw std::runtime_error("autocast: only CPU and CUDA are supported");
}
inline bool isEnabled(c10::DeviceType d) {
#if SMNAS_AUTOCAST_DEVICE_API
  return at::autocast::is_autocast_enabled(d);
#else
  return d == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}
inline void setEnabled(c10::DeviceType d, bool on) {
#if SMNAS_AUTOCAST_DEVICE_API
  at::autocast::set_autocast_enabled(d, on);
#else
  if (d == c10::DeviceType::CUDA)
    at::autocast::set_enabled(on);
  else
    at::autocast::set_cpu_enabled(on);
#endif
}
inline at::ScalarType dtype(c10::DeviceType d) {
#if SMNAS_AUTOCAST_DEVICE_API
  return at::autocast::get_autocast_dtype(d);
#else
  return d == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}
inline void setDtype(c10::DeviceType d, at::ScalarType t) {
#if SMNAS_AUTOCAST_DEVICE_API
  at::autocast::set_autocast_dtype(d, t);
#else
  if (d == c10::DeviceType::CUDA)
    at::autocast::set_autocast_gpu_dtype(t);
  else
    at::autocast::set_autocast_cpu_dtype(t);
#endif
}
}  // namespace autocast_shim

// RAII autocast region for one device type (torch.autocast's enter/exit): enables autocast with
// `dtype` in this thread, and on exit restores the previous state and, when the outermost region
// closes, clears the cast-weight cache. `enabled == false` makes it a no-op.
class AutocastGuard {
 public:
  AutocastGuard(c10::DeviceType device, at::ScalarType dtype, bool enabled) : device_(device), active_(enabled) {
    if (!active_) return;
    autocast_shim::checkDevice(device_);
    prevEnabled_ = autocast_shim::isEnabled(device_);
    prevDtype_ = autocast_shim::dtype(device_);
    autocast_shim::setEnabled(device_, true);
    autocast_shim::setDtype(device_, dtype);
    at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (!active_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    autocast_shim::setEnabled(device_, prevEnabled_);
    autocast_shim::setDtype(device_, prevDtype_);
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType device_;
  bool active_;
  bool prevEnabled_ = false;
  at::ScalarType prevDtype_ = at::kFloat;
};

}  // namespace smnas
