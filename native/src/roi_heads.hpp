// RoI heads of the two-stage detectors: mmdetection's Shared2FCBBoxHead (2fc) and Cascade R-CNN
// (n such heads with class-agnostic regression, each refining the previous stage's boxes). Owns
// the multi-level RoIAlign, its assigner and sampler thresholds and the test-time ending.
#pragma once
#include "layers.hpp"

namespace smnas {

// Shared2FC box head; classAgnostic regression for cascade stages.
struct BoxHeadImpl : torch::nn::Module {
  BoxHeadImpl(int inChannels, int roiSize, int fcWidth, int numClasses, bool classAgnostic, InitScheme init);
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& rois);  // cls [N,K+1], reg [N,4K or 4]
  std::pair<OnnxValue, OnnxValue> exportOnnx(OnnxGraph& g, const OnnxValue& rois);
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, cls{nullptr}, reg{nullptr};
};
TORCH_MODULE(BoxHead);

struct RoiHeadsOptions {
  RoiHeadsOptions(int channels, int numClasses, int fcWidth) : channels_(channels), numClasses_(numClasses), fcWidth_(fcWidth) {}
  TORCH_ARG(int, channels);
  TORCH_ARG(int, numClasses);
  TORCH_ARG(int, fcWidth);
  TORCH_ARG(int, roiSize) = 7;
  // one IoU threshold per stage (positive >= it, negative below it); a single stage at 0.5 is 2fc
  TORCH_ARG(std::vector<double>, stageIous) = std::vector<double>{0.5};
  TORCH_ARG(bool, cascade) = false;
  TORCH_ARG(InitScheme, init) = InitScheme::Mmdet;  // of the box heads' FC layers
  TORCH_ARG(int, samplesPerImage) = 512;
  TORCH_ARG(double, positiveFraction) = 0.25;
  // mmdet's RoI level mapping: level floor(log2(sqrt(wh) / finestScale)) + 1, clamped to P<=4
  TORCH_ARG(double, finestScale) = 56;
  TORCH_ARG(double, scoreThreshold) = 0.05;
  TORCH_ARG(double, nmsIou) = 0.5;
  TORCH_ARG(int, maxPerImage) = 100;
};

struct RoiHeadsImpl : torch::nn::Module {
  explicit RoiHeadsImpl(const RoiHeadsOptions& o);
  // training losses: cls, bbox (2fc) or s<t>_cls, s<t>_bbox weighted 1, 0.5, 0.25, ... (cascade)
  LossMap losses(const std::vector<Level>& levels, std::vector<torch::Tensor> proposals, const ImageSizes& sizes, const Targets& targets);
  std::vector<Detections> detect(const std::vector<Level>& levels, const std::vector<torch::Tensor>& proposals, const ImageSizes& sizes);
  // RoIAlign of rois [K,5] (batch index, box) on the level each box maps to, in fp32
  torch::Tensor extractRois(const std::vector<Level>& levels, const torch::Tensor& rois) const;
  // detect() for one image as ONNX nodes; proposals [N,4]
  OnnxDetections exportOnnx(OnnxGraph& g, const std::vector<OnnxLevel>& levels, const OnnxValue& proposals, const OnnxImageSize& size);
  // extractRois with ONNX RoiAlign (single-level): every level's RoiAlign, each RoI taking its own
  OnnxValue exportRois(OnnxGraph& g, const std::vector<OnnxLevel>& levels, const OnnxValue& rois) const;
  int numStages() const { return static_cast<int>(stages.size()); }
  RoiHeadsOptions options;
  std::vector<BoxHead> stages;  // registered as "0", "1", ...

 private:
  std::array<double, 4> stageStds(int t) const;
};
TORCH_MODULE(RoiHeads);

}  // namespace smnas
