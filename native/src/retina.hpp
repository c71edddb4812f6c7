// RetinaNet (mmdetection's RetinaHead): 4 stacked 3x3 convs per branch, shared across levels,
// 9 anchors per location, sigmoid focal loss and L1 over the assigned anchors. One deviation:
// each tower conv is followed by a parameter-free GroupNorm (native/README.md says why).
#pragma once
#include "layers.hpp"

namespace smnas {

struct RetinaOptions {
  RetinaOptions(int inChannels, int convChannels, int numClasses)
      : inChannels_(inChannels), convChannels_(convChannels), numClasses_(numClasses) {}
  TORCH_ARG(int, inChannels);
  TORCH_ARG(int, convChannels);
  TORCH_ARG(int, numClasses);
  TORCH_ARG(int, stackedConvs) = 4;
  // anchors: octave base scale 4, 3 scales per octave, ratios 0.5/1/2
  TORCH_ARG(double, octaveBaseScale) = 4;
  TORCH_ARG(int, scalesPerOctave) = 3;
  TORCH_ARG(std::vector<double>, ratios) = std::vector<double>{0.5, 1.0, 2.0};
  // MaxIoUAssigner 0.5 / 0.4, low-quality matches from IoU 0
  TORCH_ARG(double, posIou) = 0.5;
  TORCH_ARG(double, negIou) = 0.4;
  TORCH_ARG(double, minPosIou) = 0.0;
  TORCH_ARG(double, focalAlpha) = 0.25;
  TORCH_ARG(double, focalGamma) = 2.0;
  TORCH_ARG(double, priorProbability) = 0.01;  // classification bias: every anchor starts at p = 0.01
  TORCH_ARG(int, preNms) = 1000;               // candidates per level above the score threshold
  TORCH_ARG(double, scoreThreshold) = 0.05;
  TORCH_ARG(double, nmsIou) = 0.5;
  TORCH_ARG(int, maxPerImage) = 100;
};

struct RetinaImpl : torch::nn::Module {
  explicit RetinaImpl(const RetinaOptions& o);
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);   // cls [B,A*K,H,W], reg [B,4A,H,W] (fp32)
  LossMap losses(const std::vector<Level>& levels, const Targets& targets);  // focal, l1
  std::vector<Detections> detect(const std::vector<Level>& levels, const ImageSizes& sizes);
  // forward and detect() for one image as ONNX nodes
  std::pair<OnnxValue, OnnxValue> exportOnnx(OnnxGraph& g, const OnnxValue& x);
  OnnxDetections exportOnnx(OnnxGraph& g, const std::vector<OnnxLevel>& levels, const OnnxImageSize& size);
  int anchorsPerLocation() const { return static_cast<int>(options.ratios().size()) * options.scalesPerOctave(); }
  RetinaOptions options;
  torch::nn::ModuleList clsConvs, regConvs;
  Conv cls{nullptr}, reg{nullptr};

 private:
  std::vector<torch::Tensor> anchors(const std::vector<Level>& levels) const;
  std::vector<double> anchorScales() const;
};
TORCH_MODULE(Retina);

}  // namespace smnas
