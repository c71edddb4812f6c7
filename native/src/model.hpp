// The detector built from a DetectorLayout (the job's `layout`), composed like torchvision's
// GeneralizedRCNN: a backbone (backbone.hpp: ResNet / ResNeXt / MobileNetV2 stages; BN, GN or
// GN+WS), an FPN or the single stride-16 map, then either a proposal generator (rpn.hpp: RPN;
// ga_rpn.hpp: guided-anchoring RPN) feeding the RoI heads (roi_heads.hpp: 2fc or cascade), or the
// one-stage RetinaNet head (retina.hpp). Each module owns its thresholds as named options built
// from the job's recipe here. Top-level submodules are named backbone, neck, rpn and head so
// `describe` can count parameters per module (native/README.md lists what each contains).
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backbone.hpp"
#include "ga_rpn.hpp"
#include "job.hpp"
#include "layers.hpp"
#include "retina.hpp"
#include "roi_heads.hpp"
#include "rpn.hpp"

namespace smnas {

// How many backbone stages a detector builds (search/layout-resolve.ts builtStages): 3 without a
// neck, min(last FPN level, 4) with one.
int builtStages(const Layout& L);

// Options of each module from the job's layout and recipe.
RpnOptions rpnOptionsFrom(const Layout& L, const Recipe& r);
GaRpnOptions gaRpnOptionsFrom(const Layout& L, const Recipe& r);
RoiHeadsOptions roiHeadsOptionsFrom(const Layout& L, const Recipe& r);
RetinaOptions retinaOptionsFrom(const Layout& L, const Recipe& r);

struct DetectorImpl : torch::nn::Module {
  DetectorImpl(const Layout& L, const Recipe& r);
  std::vector<Level> features(const torch::Tensor& images);
  // training losses for a padded batch; gt boxes [G,4] and labels [G] per image; sizes (w,h) of the content
  LossMap losses(const torch::Tensor& images, const std::vector<torch::Tensor>& gtBoxes, const std::vector<torch::Tensor>& gtLabels,
                 const ImageSizes& sizes);
  std::vector<Detections> detect(const torch::Tensor& images, const ImageSizes& sizes);
  // detect() of one image as an ONNX graph built from these modules: image [1,3,H,W] normalised
  // and padded as evaluation does, size = its content (width, height) in the network input frame
  OnnxDetections exportOnnx(OnnxGraph& g, const OnnxValue& image, const OnnxImageSize& size);

  Layout layout;
  Backbone backbone{nullptr};
  Fpn neck{nullptr};
  std::shared_ptr<ProposalGeneratorImpl> rpn;  // two-stage: Rpn or GaRpn
  RoiHeads roiHeads{nullptr};                  // two-stage, registered as "head"
  Retina retina{nullptr};                      // one-stage, registered as "head"
};
TORCH_MODULE(Detector);

// describe: parameters counted on the built modules; FLOPs (multiply-accumulates) of every conv
// and FC for one image at the layout's input size, the RoI head counted for `rois` RoIs.
struct ModuleCost {
  double params = 0, flops = 0;
};
std::map<std::string, ModuleCost> describeModel(Detector& model, const Layout& L, int rois);

// Classification model for backbone pretraining: backbone + global average pool + linear. For
// mbblock backbones, torchvision's MobileNetV2 head first: 1x1 conv to 1280 (`last`), norm, ReLU6
// (search/cost.ts MOBILENET_LAST_CHANNELS), and dropout 0.2 before the linear layer.
struct ClassifierImpl : torch::nn::Module {
  ClassifierImpl(const Layout& L, NormKind norm, int numClasses);
  torch::Tensor forward(const torch::Tensor& x);
  Backbone backbone{nullptr};
  Conv last{nullptr};
  Norm lastNorm{nullptr};
  torch::nn::Linear fc{nullptr};
};
// torchvision MobileNetV2's last conv width (search/cost.ts MOBILENET_LAST_CHANNELS)
constexpr int kMobileNetLastChannels = 1280;
TORCH_MODULE(Classifier);

}  // namespace smnas
