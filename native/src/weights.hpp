// Backbone weights in torchvision's format and naming: reading a torchvision ImageNet checkpoint
// (`torch.save` of a state_dict: a zip archive with a pickle, read here without libtorch's
// unpickler, which rejects the OrderedDict of a state_dict in 1.13) or a `.safetensors` file,
// the one name mapping between torchvision's modules and the trainer's (both directions), loading
// into a Classifier or a detector's Backbone with every unknown, missing or mis-shaped key named,
// the export of a trainer Classifier in torchvision naming, and the mmdetection settings for a
// pretrained backbone (frozen stages, BN in eval mode). native/README.md "Backbone weights".
#pragma once
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "image.hpp"
#include "job.hpp"
#include "model.hpp"

namespace smnas {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Reading and writing tensor files. Errors throw std::runtime_error naming the file and the
// record (entry, key or offset) at fault.
NamedTensors readTorchSave(const std::string& path);    // torch.save zip archive of a dict of tensors
NamedTensors readSafetensors(const std::string& path);  // F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL
// By content: a zip archive ("PK\3\4") is read as torch.save, anything else as safetensors.
NamedTensors readTensorFile(const std::string& path);
void writeSafetensors(const std::string& path, const NamedTensors& tensors);
// torch::pickle_save of a dict name -> tensor: a zip archive that Python's torch.load reads.
void writeTorchSave(const std::string& path, const NamedTensors& tensors);

// The name mapping for a backbone layout: every (torchvision name, trainer name) pair of the full
// classifier (four stages, and fc; for mbblock also torchvision's features.<last> conv + BN), the
// trainer name relative to a Classifier ("backbone.stage1.0.conv1.weight", "fc.weight"). BN
// entries list weight, bias, running_mean, running_var and num_batches_tracked.
std::vector<std::pair<std::string, std::string>> torchvisionNameMap(const BackboneLayout& L);
std::string torchvisionToTrainer(const BackboneLayout& L, const std::string& torchvisionName);  // "" when unknown
std::string trainerToTorchvision(const BackboneLayout& L, const std::string& trainerName);      // "" when unknown

struct ImportOptions {
  std::string field = "initWeights";  // the job field named by JobError
};
// Loads a torchvision checkpoint into a whole Classifier (every key of the map required; the
// classifier's class count must match fc). Throws JobError(field) listing unknown, missing and
// mis-shaped keys, or when the model has no BatchNorm (GN / GN+WS).
void importTorchvisionClassifier(Classifier& model, const BackboneLayout& L, const std::string& path, const ImportOptions& o = {});
// Loads it into a detector's backbone: keys of stages the detector does not build and the
// classifier's keys are known but unused; anything else unknown, missing or mis-shaped fails.
void importTorchvisionBackbone(Backbone& backbone, const BackboneLayout& L, const std::string& path, const ImportOptions& o = {});
// Writes the classifier in torchvision naming: .safetensors, or .pth / .pt (torch.save format).
void exportTorchvision(Classifier& model, const BackboneLayout& L, const std::string& path);

// mmdetection's pretrained-backbone settings (ResNet frozen_stages / norm_eval). Call after every
// model->train() (and once before building the optimiser, which skips frozen parameters): frozen
// parameters get requires_grad false and their norms eval mode; normEval puts every BatchNorm of
// the backbone in eval mode (running statistics frozen, batch statistics unused).
void applyBackboneTraining(Backbone& backbone, const BackboneTraining& t);

// torchvision's ImageNet evaluation transforms on a decoded RGB image, as a [3, crop, crop] float
// tensor: Resize(resize, antialias=True) on the uint8 tensor (bilinear with antialias in float32,
// rounded back to uint8), CenterCrop(crop), /255, Normalize(ImageNet mean, std).
torch::Tensor imagenetEvalTensor(const Image& img, int resize = 256, int crop = 224);

// The `classify` command (native/src/classify_images.cpp).
int classifyImages(const Job& job, const torch::Device& dev);

}  // namespace smnas
