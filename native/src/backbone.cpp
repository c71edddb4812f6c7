#include "backbone.hpp"

namespace smnas {
namespace F = torch::nn::functional;

BlockImpl::BlockImpl(const BlockLayout& b, BlockKind blockKind, NormKind norm) : kind(blockKind) {
  const bool ws = norm == NormKind::GNWS;
  auto conv = [&](int in, int out, int k) { return ConvOptions(in, out, k).ws(ws); };
  switch (kind) {
    case BlockKind::BasicBlock:
      conv1 = register_module("conv1", Conv(conv(b.inChannels, b.midChannels, 3).stride(b.stride)));
      n1 = register_module("n1", Norm(norm, b.midChannels));
      conv2 = register_module("conv2", Conv(conv(b.midChannels, b.outChannels, 3)));
      n2 = register_module("n2", Norm(norm, b.outChannels));
      break;
    case BlockKind::Bottleneck:
    case BlockKind::XBottleneck:
      // torchvision's ResNet v1.5: the stride sits on the 3x3 conv
      conv1 = register_module("conv1", Conv(conv(b.inChannels, b.midChannels, 1)));
      n1 = register_module("n1", Norm(norm, b.midChannels));
      conv2 = register_module("conv2", Conv(conv(b.midChannels, b.midChannels, 3).stride(b.stride).groups(b.groups)));
      n2 = register_module("n2", Norm(norm, b.midChannels));
      conv3 = register_module("conv3", Conv(conv(b.midChannels, b.outChannels, 1)));
      n3 = register_module("n3", Norm(norm, b.outChannels));
      break;
    case BlockKind::MBBlock:
      if (b.midChannels != b.inChannels) {  // the stem's expansion-1 block has no expansion conv
        conv1 = register_module("conv1", Conv(conv(b.inChannels, b.midChannels, 1)));
        n1 = register_module("n1", Norm(norm, b.midChannels));
      }
      conv2 = register_module("conv2", Conv(conv(b.midChannels, b.midChannels, 3).stride(b.stride).groups(b.groups)));
      n2 = register_module("n2", Norm(norm, b.midChannels));
      conv3 = register_module("conv3", Conv(conv(b.midChannels, b.outChannels, 1)));
      n3 = register_module("n3", Norm(norm, b.outChannels));
      identity = b.stride == 1 && b.inChannels == b.outChannels;
      break;
  }
  if (b.projection) {
    down = register_module("down", Conv(conv(b.inChannels, b.outChannels, 1).stride(b.stride)));
    dn = register_module("dn", Norm(norm, b.outChannels));
  }
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x) {
  if (kind == BlockKind::MBBlock) {
    auto y = conv1 ? torch::clamp(n1(conv1(x)), 0, 6) : x;  // ReLU6
    y = torch::clamp(n2(conv2(y)), 0, 6);
    y = n3(conv3(y));  // linear bottleneck: no activation
    return identity ? x + y : y;
  }
  auto y = torch::relu(n1(conv1(x)));
  if (kind == BlockKind::BasicBlock) {
    y = n2(conv2(y));
  } else {
    y = torch::relu(n2(conv2(y)));
    y = n3(conv3(y));
  }
  auto shortcut = down ? dn(down(x)) : x;
  return torch::relu(y + shortcut);
}

OnnxValue BlockImpl::exportOnnx(OnnxGraph& g, const OnnxValue& x) {
  if (kind == BlockKind::MBBlock) {
    auto y = conv1 ? onnxRelu6(g, n1->exportOnnx(g, conv1->exportOnnx(g, x))) : x;
    y = onnxRelu6(g, n2->exportOnnx(g, conv2->exportOnnx(g, y)));
    y = n3->exportOnnx(g, conv3->exportOnnx(g, y));
    return identity ? g.op("Add", {x, y}) : y;
  }
  auto y = onnxRelu(g, n1->exportOnnx(g, conv1->exportOnnx(g, x)));
  if (kind == BlockKind::BasicBlock) {
    y = n2->exportOnnx(g, conv2->exportOnnx(g, y));
  } else {
    y = onnxRelu(g, n2->exportOnnx(g, conv2->exportOnnx(g, y)));
    y = n3->exportOnnx(g, conv3->exportOnnx(g, y));
  }
  auto shortcut = down ? dn->exportOnnx(g, down->exportOnnx(g, x)) : x;
  return onnxRelu(g, g.op("Add", {y, shortcut}));
}

BackboneImpl::BackboneImpl(const BackboneLayout& L, NormKind norm, int numStages) : inverted(L.block == BlockKind::MBBlock) {
  const bool ws = norm == NormKind::GNWS;
  if (inverted) {
    // MobileNetV2 stem: 3x3/2 conv to stemChannels (32), norm, ReLU6, then the expansion-1 block to
    // the first stage's input width (16)
    stem = register_module("stem", Conv(ConvOptions(3, L.stemChannels, 3).stride(2).ws(ws)));
    stemNorm = register_module("stemNorm", Norm(norm, L.stemChannels));
    const int out = L.stages[0].front().inChannels;
    BlockLayout sb{/*inChannels=*/L.stemChannels, /*outChannels=*/out, /*midChannels=*/L.stemChannels, /*stride=*/1,
                   /*groups=*/L.stemChannels,
                   /*projection=*/false};
    stemBlock = register_module("stemBlock", Block(sb, L.block, norm));
  } else {
    stem = register_module("stem", Conv(ConvOptions(3, L.stemChannels, 7).stride(2).ws(ws)));
    stemNorm = register_module("stemNorm", Norm(norm, L.stemChannels));
  }
  for (int s = 0; s < numStages; ++s) {
    torch::nn::Sequential seq;
    for (const auto& b : L.stages[s]) seq->push_back(Block(b, L.block, norm));
    stages.push_back(register_module("stage" + std::to_string(s + 1), seq));
  }
}

std::vector<torch::Tensor> BackboneImpl::forward(const torch::Tensor& x) {
  torch::Tensor y;
  if (inverted) {
    y = stemBlock(torch::clamp(stemNorm(stem(x)), 0, 6));
  } else {
    y = torch::relu(stemNorm(stem(x)));
    y = F::max_pool2d(y, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
  }
  std::vector<torch::Tensor> out;
  for (auto& s : stages) {
    y = s->forward(y);
    out.push_back(y);
  }
  return out;
}

std::vector<OnnxValue> BackboneImpl::exportOnnx(OnnxGraph& g, const OnnxValue& x) {
  OnnxValue y;
  if (inverted) {
    y = stemBlock->exportOnnx(g, onnxRelu6(g, stemNorm->exportOnnx(g, stem->exportOnnx(g, x))));
  } else {
    y = onnxRelu(g, stemNorm->exportOnnx(g, stem->exportOnnx(g, x)));
    y = g.op("MaxPool", {y},
             {{"kernel_shape", std::vector<int64_t>{3, 3}},
              {"strides", std::vector<int64_t>{2, 2}},
              {"pads", std::vector<int64_t>{1, 1, 1, 1}}});
  }
  std::vector<OnnxValue> out;
  for (auto& s : stages) {
    for (size_t i = 0; i < s->size(); ++i) y = s->ptr(i)->as<BlockImpl>()->exportOnnx(g, y);
    out.push_back(y);
  }
  return out;
}

FpnImpl::FpnImpl(const std::array<int, 4>& sc, int from_, int to_, int C, InitScheme scheme) : from(from_), to(to_) {
  lateral = register_module("lateral", torch::nn::ModuleList());
  output = register_module("output", torch::nn::ModuleList());
  extra = register_module("extra", torch::nn::ModuleList());
  const Init init = scheme == InitScheme::Torchvision ? Init::KaimingUniformA1 : Init::Xavier;
  for (int p = from; p <= std::min(to, 4); ++p) {
    lateral->push_back(Conv(ConvOptions(sc[p - 1], C, 1).bias(true).init(init)));
    output->push_back(Conv(ConvOptions(C, C, 3).bias(true).init(init)));
  }
  for (int p = 5; p <= to; ++p) extra->push_back(Conv(ConvOptions(C, C, 3).stride(2).bias(true).init(init)));
}

std::vector<torch::Tensor> FpnImpl::forward(const std::vector<torch::Tensor>& c) {
  const int top = std::min(to, 4);
  std::vector<torch::Tensor> lat;
  for (int p = from; p <= top; ++p) lat.push_back(lateral[p - from]->as<ConvImpl>()->forward(c[p - 1]));
  for (int i = static_cast<int>(lat.size()) - 1; i > 0; --i) {
    auto up = F::interpolate(
        lat[i], F::InterpolateFuncOptions().size(std::vector<int64_t>{lat[i - 1].size(2), lat[i - 1].size(3)}).mode(torch::kNearest));
    lat[i - 1] = lat[i - 1] + up;
  }
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < lat.size(); ++i) out.push_back(output[i]->as<ConvImpl>()->forward(lat[i]));
  for (int p = 5; p <= to; ++p) {
    auto in = p == 5 ? out.back() : torch::relu(out.back());  // P5 on P4's output, P6 on ReLU(P5)
    out.push_back(extra[p - 5]->as<ConvImpl>()->forward(in));
  }
  return out;
}

}  // namespace smnas

namespace smnas {

std::vector<OnnxValue> FpnImpl::exportOnnx(OnnxGraph& g, const std::vector<OnnxValue>& c) {
  const int top = std::min(to, 4);
  std::vector<OnnxValue> lat;
  for (int p = from; p <= top; ++p) lat.push_back(lateral[p - from]->as<ConvImpl>()->exportOnnx(g, c[p - 1]));
  for (int i = static_cast<int>(lat.size()) - 1; i > 0; --i) {
    // F::interpolate(nearest) to the finer map's size: src = floor(dst * in / out)
    auto sizes = g.op("Concat",
                      {g.op("Slice", {g.op("Shape", {lat[i]}), g.constInts({0}, {1}), g.constInts({2}, {1})}),
                       g.op("Slice", {g.op("Shape", {lat[i - 1]}), g.constInts({2}, {1}), g.constInts({4}, {1})})},
                      {{"axis", int64_t{0}}});
    auto up = g.op("Resize", {lat[i], "", "", sizes},
                   {{"mode", std::string("nearest")},
                    {"coordinate_transformation_mode", std::string("asymmetric")},
                    {"nearest_mode", std::string("floor")}});
    lat[i - 1] = g.op("Add", {lat[i - 1], up});
  }
  std::vector<OnnxValue> out;
  for (size_t i = 0; i < lat.size(); ++i) out.push_back(output[i]->as<ConvImpl>()->exportOnnx(g, lat[i]));
  for (int p = 5; p <= to; ++p) {
    auto in = p == 5 ? out.back() : onnxRelu(g, out.back());
    out.push_back(extra[p - 5]->as<ConvImpl>()->exportOnnx(g, in));
  }
  return out;
}

}  // namespace smnas
