// classify: a classifier imported from a torchvision checkpoint (weights.hpp) run on a folder of
// images with torchvision's ImageNet evaluation transforms; prints each image's top-k classes and
// their logits, so the import can be checked against torchvision in Python on the same images.
#include <algorithm>
#include <filesystem>

#include "commands.hpp"
#include "model.hpp"
#include "protocol.hpp"
#include "runtime.hpp"
#include "weights.hpp"

namespace fs = std::filesystem;

namespace smnas {

int classifyImages(const Job& job, const torch::Device& dev) {
  if (!fs::is_directory(job.imagesDir)) throw JobError("images", job.imagesDir + " is not a directory");
  std::vector<std::string> files;
  for (auto& e : fs::directory_iterator(job.imagesDir)) {
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (e.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp"))
      files.push_back(e.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) throw JobError("images", job.imagesDir + " holds no .png, .jpg, .jpeg or .bmp image");
  if (!fs::exists(job.initWeights)) throw JobError("initWeights", "file " + job.initWeights + " does not exist");
  Classifier model(job.layout, NormKind::BN, job.numClasses);
  importTorchvisionClassifier(model, job.layout.backbone, job.initWeights);
  model->to(dev);
  model->eval();
  emitStarted(job, nullptr, *model);
  const double t0 = wallSeconds();
  torch::NoGradGuard ng;
  nlohmann::json predictions = nlohmann::json::array();
  for (const auto& f : files) {
    Image img = loadImage((fs::path(job.imagesDir) / f).string());
    auto x = imagenetEvalTensor(img).unsqueeze(0).to(dev);
    auto logits = model(x)[0].to(torch::kCPU);
    auto [values, indices] = logits.topk(job.topK);
    std::vector<int64_t> classes(indices.data_ptr<int64_t>(), indices.data_ptr<int64_t>() + job.topK);
    std::vector<double> v;
    for (int64_t k = 0; k < job.topK; ++k) v.push_back(values[k].item<double>());
    predictions.push_back({{"file", f}, {"classes", classes}, {"logits", v}});
  }
  emit({{"type", "result"}, {"kind", "ok"}, {"command", job.command}, {"wallSeconds", wallSeconds() - t0}, {"predictions", predictions}});
  return kOk;
}

}  // namespace smnas
