#include "data.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <unordered_map>

#include "protocol.hpp"

namespace fs = std::filesystem;

namespace smnas {
using nlohmann::json;

uint64_t mixSeed(uint64_t seed, uint64_t a, uint64_t b) {
  // splitmix64 over the three words: independent streams per (seed, epoch, index)
  auto mix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  return mix(mix(mix(seed) ^ a) ^ (b * 0x632be59bd9b4e019ULL));
}

std::vector<size_t> epochOrder(size_t n, uint64_t seed, int64_t epoch) {
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(mixSeed(seed, 0x0D0D, static_cast<uint64_t>(epoch)));
  // Fisher-Yates with our own index draw: std::shuffle's use of the engine is implementation-defined
  for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  return order;
}

std::string unsafeFileName(const std::string& name) {
  if (name.empty()) return "is empty";
  if (name.find('\0') != std::string::npos) return "contains a NUL byte";
  if (name.front() == '/' || name.front() == '\\') return "is an absolute path";
  for (const auto& part : fs::path(name))
    if (part == "..") return "has a '..' segment";
  return "";
}

CocoDataset loadCoco(const std::string& root, const std::string& split) {
  CocoDataset ds;
  ds.annotationFile = (fs::path(root) / "annotations" / ("instances_" + split + ".json")).string();
  ds.imageDir = (fs::path(root) / split).string();
  std::ifstream in(ds.annotationFile);
  if (!in) throw BadData(ds.annotationFile, "cannot read " + ds.annotationFile);
  json doc;
  try {
    doc = json::parse(in);
  } catch (const std::exception& e) {
    throw BadData(ds.annotationFile, ds.annotationFile + ": not valid JSON: " + e.what());
  }
  const std::string& F = ds.annotationFile;
  auto need = [&](const json& obj, const char* key, const std::string& rec) -> const json& {
    if (!obj.is_object() || !obj.contains(key)) throw BadData(F + ": " + rec, F + ": " + rec + "." + key + " is missing");
    return obj[key];
  };
  for (const char* k : {"images", "annotations", "categories"})
    if (!doc.contains(k) || !doc[k].is_array()) throw BadData(F, F + ": '" + k + "' must be an array");

  std::unordered_map<int64_t, int> catIndex;
  std::vector<int64_t> cats;
  for (size_t i = 0; i < doc["categories"].size(); ++i) {
    const json& c = doc["categories"][i];
    const json& id = need(c, "id", "categories[" + std::to_string(i) + "]");
    if (!id.is_number_integer()) throw BadData(F, F + ": categories[" + std::to_string(i) + "].id must be an integer");
    cats.push_back(id.get<int64_t>());
  }
  std::sort(cats.begin(), cats.end());
  for (size_t i = 0; i < cats.size(); ++i) catIndex[cats[i]] = static_cast<int>(i);
  ds.categoryIds = cats;

  std::unordered_map<int64_t, size_t> imgIndex;
  for (size_t i = 0; i < doc["images"].size(); ++i) {
    const json& im = doc["images"][i];
    std::string rec = "images[" + std::to_string(i) + "]";
    DetRecord r;
    try {
      r.id = need(im, "id", rec).get<int64_t>();
      r.file = need(im, "file_name", rec).get<std::string>();
      r.width = need(im, "width", rec).get<int>();
      r.height = need(im, "height", rec).get<int>();
    } catch (const json::exception& e) {
      throw BadData(F + ": " + rec, F + ": " + rec + ": " + e.what());
    }
    if (r.width <= 0 || r.height <= 0)
      throw BadData(F + ": " + rec, F + ": " + rec + ": width and height must be positive (got " + std::to_string(r.width) + "x" +
                                        std::to_string(r.height) + ")");
    if (const std::string why = unsafeFileName(r.file); !why.empty())
      throw BadData(F + ": " + rec,
                    F + ": " + rec + ".file_name '" + r.file + "' " + why + " (images are read only from inside " + ds.imageDir + ")");
    if (imgIndex.count(r.id)) throw BadData(F + ": " + rec, F + ": " + rec + ": duplicate image id " + std::to_string(r.id));
    imgIndex[r.id] = ds.images.size();
    ds.images.push_back(std::move(r));
  }
  for (size_t i = 0; i < doc["annotations"].size(); ++i) {
    const json& a = doc["annotations"][i];
    std::string rec = "annotations[" + std::to_string(i) + "]";
    int64_t imageId, cat;
    std::vector<double> bbox;
    bool crowd = false;
    try {
      imageId = need(a, "image_id", rec).get<int64_t>();
      cat = need(a, "category_id", rec).get<int64_t>();
      bbox = need(a, "bbox", rec).get<std::vector<double>>();
      if (a.contains("iscrowd")) crowd = a["iscrowd"].get<int>() != 0;
    } catch (const json::exception& e) {
      throw BadData(F + ": " + rec, F + ": " + rec + ": " + e.what());
    }
    if (bbox.size() != 4) throw BadData(F + ": " + rec, F + ": " + rec + ".bbox must have 4 numbers");
    auto it = imgIndex.find(imageId);
    if (it == imgIndex.end()) throw BadData(F + ": " + rec, F + ": " + rec + ".image_id " + std::to_string(imageId) + " is not in images");
    auto ct = catIndex.find(cat);
    if (ct == catIndex.end())
      throw BadData(F + ": " + rec, F + ": " + rec + ".category_id " + std::to_string(cat) + " is not in categories");
    for (double v : bbox)
      if (!std::isfinite(v)) throw BadData(F + ": " + rec, F + ": " + rec + ".bbox has a value that is not a finite number");
    if (bbox[2] < 1 || bbox[3] < 1) continue;  // degenerate boxes carry no signal (mmdet filters them too)
    ds.images[it->second].boxes.push_back({static_cast<float>(bbox[0]), static_cast<float>(bbox[1]), static_cast<float>(bbox[0] + bbox[2]),
                                           static_cast<float>(bbox[1] + bbox[3]), ct->second, crowd});
  }
  if (ds.images.empty()) throw BadData(F, F + ": no images");
  return ds;
}

PreparedImage prepareDetection(const CocoDataset& ds, size_t index, int inputW, int inputH, double jitterMin, double jitterMax, bool flip,
                               uint64_t seed, int64_t epoch, bool train) {
  const DetRecord& r = ds.images.at(index);
  std::string path = (fs::path(ds.imageDir) / r.file).string();
  // the header first: a file claiming a huge size is refused before anything is decoded
  int headerW = 0, headerH = 0;
  imageSize(path, headerW, headerH);
  if (headerW != r.width || headerH != r.height)
    throw BadData(path, path + ": image header says " + std::to_string(headerW) + "x" + std::to_string(headerH) +
                            " but the annotation says " + std::to_string(r.width) + "x" + std::to_string(r.height));
  Image img = loadImage(path);
  if (img.width != r.width || img.height != r.height)
    throw BadData(path, path + ": decoded size " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                            " differs from the annotation's " + std::to_string(r.width) + "x" + std::to_string(r.height));
  PreparedImage p;
  p.imageId = r.id;
  p.origWidth = r.width;
  p.origHeight = r.height;
  double jitter = 1.0;
  std::mt19937_64 rng(mixSeed(seed, static_cast<uint64_t>(epoch) + 1, index));
  if (train) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    double a = u(rng), b = u(rng);
    jitter = jitterMin + (jitterMax - jitterMin) * a;
    p.flipped = flip && b < 0.5;
  }
  double scale = std::min(static_cast<double>(inputW) / r.width, static_cast<double>(inputH) / r.height) * jitter;
  int nw = std::max(1, static_cast<int>(std::lround(r.width * scale)));
  int nh = std::max(1, static_cast<int>(std::lround(r.height * scale)));
  p.img = resizeBilinear(img, nw, nh);
  float sx = static_cast<float>(nw) / r.width, sy = static_cast<float>(nh) / r.height;
  p.scale = static_cast<float>(scale);
  for (const GtBox& b : r.boxes) {
    GtBox s{b.x1 * sx, b.y1 * sy, b.x2 * sx, b.y2 * sy, b.label, b.crowd};
    if (p.flipped) {
      float x1 = nw - s.x2, x2 = nw - s.x1;
      s.x1 = x1;
      s.x2 = x2;
    }
    p.boxes.push_back(s);
  }
  if (p.flipped) flipHorizontal(p.img);
  return p;
}

ClassDataset loadClassFolders(const std::string& root, const std::string& split) {
  ClassDataset ds;
  fs::path dir = fs::path(root) / split;
  if (!fs::is_directory(dir)) throw BadData(dir.string(), "class-folder split directory " + dir.string() + " does not exist");
  for (auto& e : fs::directory_iterator(dir))
    if (e.is_directory()) ds.classes.push_back(e.path().filename().string());
  std::sort(ds.classes.begin(), ds.classes.end());
  if (ds.classes.size() < 2) throw BadData(dir.string(), dir.string() + ": needs at least 2 class folders");
  for (size_t c = 0; c < ds.classes.size(); ++c) {
    std::vector<std::string> files;
    for (auto& e : fs::directory_iterator(dir / ds.classes[c])) {
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
      if (e.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp")) files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    for (auto& f : files) ds.items.push_back({f, static_cast<int>(c)});
  }
  if (ds.items.empty()) throw BadData(dir.string(), dir.string() + ": no images in the class folders");
  return ds;
}

Image prepareClassification(const ClassDataset& ds, size_t index, int crop, uint64_t seed, int64_t epoch, bool train) {
  Image img = loadImage(ds.items.at(index).file);
  if (!train) {
    // resize the shorter side to crop * 256/224, centre crop (the torchvision evaluation transform)
    int shortSide = static_cast<int>(std::lround(crop * 256.0 / 224.0));
    double s = static_cast<double>(shortSide) / std::min(img.width, img.height);
    int nw = std::max(crop, static_cast<int>(std::lround(img.width * s)));
    int nh = std::max(crop, static_cast<int>(std::lround(img.height * s)));
    Image r = resizeBilinear(img, nw, nh);
    return cropResize(r, (nw - crop) / 2, (nh - crop) / 2, crop, crop, crop, crop);
  }
  std::mt19937_64 rng(mixSeed(seed, static_cast<uint64_t>(epoch) + 1, index));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double area = static_cast<double>(img.width) * img.height;
  int x = 0, y = 0, w = img.width, h = img.height;
  bool found = false;
  for (int attempt = 0; attempt < 10 && !found; ++attempt) {
    double target = area * (0.08 + 0.92 * u(rng));
    double logr = std::log(3.0 / 4.0) + (std::log(4.0 / 3.0) - std::log(3.0 / 4.0)) * u(rng);
    double ratio = std::exp(logr);
    int cw = static_cast<int>(std::lround(std::sqrt(target * ratio)));
    int ch = static_cast<int>(std::lround(std::sqrt(target / ratio)));
    if (cw > 0 && ch > 0 && cw <= img.width && ch <= img.height) {
      x = static_cast<int>(u(rng) * (img.width - cw + 1));
      y = static_cast<int>(u(rng) * (img.height - ch + 1));
      x = std::min(x, img.width - cw);
      y = std::min(y, img.height - ch);
      w = cw;
      h = ch;
      found = true;
    }
  }
  if (!found) {  // fall back to a centre crop of the whole image
    int s = std::min(img.width, img.height);
    x = (img.width - s) / 2;
    y = (img.height - s) / 2;
    w = h = s;
  }
  Image out = cropResize(img, x, y, w, h, crop, crop);
  if (u(rng) < 0.5) flipHorizontal(out);
  return out;
}

}  // namespace smnas
