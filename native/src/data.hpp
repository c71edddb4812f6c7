// Datasets: COCO-form detection directories (annotations/instances_<split>.json + <split>/ images)
// and ImageNet-style class folders; deterministic augmentation seeded from (seed, epoch, index);
// an ordered multi-threaded prefetcher. No libtorch here: loader threads stay cheap.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "image.hpp"

namespace smnas {

struct GtBox {
  float x1, y1, x2, y2;  // pixels, x2 = x + w
  int label;             // contiguous 0..K-1
  bool crowd;
};

struct DetRecord {
  int64_t id;
  std::string file;
  int width, height;
  std::vector<GtBox> boxes;
};

struct CocoDataset {
  std::string annotationFile, imageDir;
  std::vector<DetRecord> images;
  std::vector<int64_t> categoryIds;  // contiguous label -> COCO category id
};

// Why a COCO file_name may not be used as a path below the images folder ("" when it may): absolute,
// a ".." segment, empty, a NUL byte.
std::string unsafeFileName(const std::string& name);
// Validates the file; throws BadData naming the file and record.
CocoDataset loadCoco(const std::string& root, const std::string& split);

// One image prepared for the network: resized (aspect kept) into the input frame and maybe flipped.
struct PreparedImage {
  Image img;        // resized content (top-left aligned, padded later)
  float scale = 1;  // resized / original
  bool flipped = false;
  std::vector<GtBox> boxes;  // in the resized frame
  int64_t imageId = 0;
  int origWidth = 0, origHeight = 0;
};

// Training: scale jitter and flip drawn from a generator seeded by (seed, epoch, index).
PreparedImage prepareDetection(const CocoDataset& ds, size_t index, int inputW, int inputH, double jitterMin, double jitterMax, bool flip,
                               uint64_t seed, int64_t epoch, bool train);

struct ClassRecord {
  std::string file;
  int label;
};
struct ClassDataset {
  std::vector<std::string> classes;
  std::vector<ClassRecord> items;
};
ClassDataset loadClassFolders(const std::string& root, const std::string& split);
// RandomResizedCrop(scale 0.08..1, ratio 3/4..4/3) + flip in training; resize + centre crop in evaluation.
Image prepareClassification(const ClassDataset& ds, size_t index, int crop, uint64_t seed, int64_t epoch, bool train);

// A deterministic 64-bit mix of (seed, a, b) for per-sample generators.
uint64_t mixSeed(uint64_t seed, uint64_t a, uint64_t b = 0);
// The data order of one epoch: a permutation seeded by (seed, epoch).
std::vector<size_t> epochOrder(size_t n, uint64_t seed, int64_t epoch);

// Produces items 0..n-1 with `workers` threads and hands them out in order (window-bounded).
template <typename T>
class OrderedPrefetcher {
 public:
  OrderedPrefetcher(size_t n, int workers, std::function<T(size_t)> produce, size_t window = 8)
      : n_(n), produce_(std::move(produce)), window_(std::max<size_t>(window, workers)) {
    for (int w = 0; w < workers; ++w) threads_.emplace_back([this] { run(); });
  }
  ~OrderedPrefetcher() {
    {
      std::lock_guard<std::mutex> l(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  // Item i (must be requested in increasing order); rethrows a producer's exception.
  T get(size_t i) {
    if (threads_.empty()) return produce_(i);
    std::unique_lock<std::mutex> l(m_);
    cv_.wait(l, [&] { return ready_.count(i) || errors_.count(i); });
    if (errors_.count(i)) std::rethrow_exception(errors_[i]);
    T v = std::move(ready_[i]);
    ready_.erase(i);
    consumed_ = i + 1;
    cv_.notify_all();
    return v;
  }

 private:
  void run() {
    for (;;) {
      size_t i;
      {
        std::unique_lock<std::mutex> l(m_);
        cv_.wait(l, [&] { return stop_ || (next_ < n_ && next_ < consumed_ + window_); });
        if (stop_) return;
        i = next_++;
      }
      try {
        T v = produce_(i);
        std::lock_guard<std::mutex> l(m_);
        ready_.emplace(i, std::move(v));
      } catch (...) {
        std::lock_guard<std::mutex> l(m_);
        errors_[i] = std::current_exception();
      }
      cv_.notify_all();
    }
  }
  size_t n_;
  std::function<T(size_t)> produce_;
  size_t window_;
  std::vector<std::thread> threads_;
  std::mutex m_;
  std::condition_variable cv_;
  std::map<size_t, T> ready_;
  std::map<size_t, std::exception_ptr> errors_;
  size_t next_ = 0, consumed_ = 0;
  bool stop_ = false;
};

}  // namespace smnas
