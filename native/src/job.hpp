// The trainer job file (protocol/job.ts is the single definition; native/schema/job.schema.json
// is its JSON Schema export). Parsed and validated here before any work; a bad field throws
// JobError naming its dotted path, which main() reports as {"type":"error","kind":"invalid_job"}.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace smnas {

struct JobError : std::runtime_error {
  std::string field;
  JobError(std::string f, const std::string& msg) : std::runtime_error(msg), field(std::move(f)) {}
};

// Kinds are parsed once from the job's strings (protocol/job.ts names them) into these enums.
enum class BlockKind { BasicBlock, Bottleneck, XBottleneck, MBBlock };
enum class NormKind { BN, GN, GNWS };
enum class NeckKind { None, Fpn };
enum class RpnKind { None, Rpn, GaRpn };
enum class HeadKind { TwoFc, Cascade, Retina };
// Initialisation of the FPN and the 2fc / cascade box heads (recipe `initScheme`): mmdetection's (Xavier
// FPN convs and FC layers, classifier N(0, 0.01), regressor N(0, 0.001)) or torchvision's
// (kaiming_uniform(a=1) FPN convs as FeaturePyramidNetwork; PyTorch's default Linear init in
// TwoMLPHead and FastRCNNPredictor). The backbone and the RPN head are initialised alike in both.
enum class InitScheme { Mmdet, Torchvision };
// wire name -> kind; std::invalid_argument for an unknown name (job.cpp reports the field first)
BlockKind blockKindNamed(const std::string& name);
NormKind normKindNamed(const std::string& name);
RpnKind rpnKindNamed(const std::string& name);
HeadKind headKindNamed(const std::string& name);
// kind -> wire name (messages)
const char* blockKindName(BlockKind k);
const char* normKindName(NormKind k);

struct BlockLayout {
  int inChannels, outChannels, midChannels, stride, groups;
  bool projection;
};

struct BackboneLayout {
  BlockKind block;
  int stemChannels;
  std::array<std::vector<BlockLayout>, 4> stages;
  std::array<int, 4> stageChannels;
};

struct NeckLayout {
  NeckKind kind;
  int channels;
  int from = 3, to = 3;  // fpn levels (none: the single P3 map, stride 16)
};

struct RpnLayout {
  RpnKind kind;
  int anchorsPerLocation, convChannels;
  int deformGroups = 0;  // ga-rpn: the feature adaption's deformable groups
};

struct HeadLayout {
  HeadKind kind;
  int numClasses;
  int fcWidth = 0, roiSize = 7;
  int stages = 1;  // cascade
  std::vector<double> iouThresholds;
  int convChannels = 0, stackedConvs = 0, anchorsPerLocation = 0;  // retina
};

struct Layout {
  std::string arch;
  int width, height;
  BackboneLayout backbone;
  NeckLayout neck;
  RpnLayout rpn;
  HeadLayout head;
};

struct Optimizer {
  double lr, momentum, weightDecay, clipGradNorm;
  bool noDecayOnNormAndBias;
  // Linear scaling rule: lr is for a global batch of this many images and scales with the actual
  // global batch (batchSize x processes). 0: lr as given, whatever the batch.
  int lrReferenceBatch = 0;
};

struct Schedule {
  std::string kind;  // cosine | step
  double minLr = 0, warmupRatio = 0.001, gamma = 0.1;
  int64_t warmupIterations = 0;
  double warmupFraction = 0;  // warm-up = max(warmupIterations, round(fraction * total)); protocol/recipe.ts
  std::vector<int> milestones;
};

// mmdetection's settings for a pretrained backbone (recipe.backbone; native/src/weights.hpp).
struct BackboneTraining {
  int frozenStages = -1;  // -1: none; 0: the stem; k: the stem and stages 1..k
  bool normEval = false;  // every backbone BatchNorm in eval mode during training
};

struct Recipe {
  std::string name;
  NormKind norm;
  int epochs, batchSize, workers;
  int64_t maxIterations = 0;           // 0 = none
  std::string mixedPrecision = "off";  // off | bf16 | fp16: autocast of the training forward pass
  bool syncBn = false;                 // data-parallel: BN in train mode with the statistics of every process (src/sync_bn.hpp)
  Optimizer optimizer;
  Schedule schedule;
  // detection
  bool flip = true;
  std::array<double, 2> scaleJitter{1.0, 1.0};
  int fcWidth = 0;
  int rpnSamples = 256, rpnTrainPreNms = 2000, rpnTrainPostNms = 1000, rpnTestPreNms = 1000, rpnTestPostNms = 1000;
  double rpnPosFraction = 0.5, rpnNmsIou = 0.7;
  // absent: AnchorSampling's (mmdetection's 0.3); 0: torchvision's (each gt's best anchors, any overlap)
  std::optional<double> rpnMinPosIou;
  InitScheme init = InitScheme::Mmdet;
  int roiSamples = 512;
  double roiPosFraction = 0.25;
  double testScoreThreshold = 0.05, testNmsIou = 0.5;
  int testMaxPerImage = 100;
  BackboneTraining backbone;
  // classification
  int cropSize = 0;
};

enum class DistBackend { Auto, Gloo, Nccl };

// Data-parallel settings (job.distributed); torchrun's environment variables override them
// (native/src/dist.hpp). worldSize 1: a single process, as before.
struct DistributedSettings {
  int worldSize = 1, rank = 0;
  std::string masterAddr = "127.0.0.1";
  int masterPort = 29500;
  double timeoutSeconds = 120;
  double bucketMB = 25;
  DistBackend backend = DistBackend::Auto;
};

// `export`: the trained detector as an ONNX model (native/src/onnx_graph.hpp, docs/deploy.md).
struct ExportSettings {
  std::string out;            // the .onnx file
  bool dynamic = false;       // symbolic height/width; else the fixed [height, width] below
  int height = 0, width = 0;  // multiples of 32 (evaluation pads to them)
  int opset = 17;
  int parityImages = 0;  // with data: the first n validation images' inputs and libtorch detections under outDir/parity/
};

struct Job {
  std::string command;
  bool classification = false;
  std::string outDir, device, arch;
  int64_t seed;
  int threads;
  bool resume;
  int64_t ckptEveryIterations;
  double ckptEverySeconds;
  int ckptKeep;
  Layout layout;
  Recipe recipe;
  bool hasData = false;
  std::string dataRoot, trainSplit = "train", valSplit = "val";
  int numClasses = 0;
  std::string initWeights, initKind = "backbone";  // backbone | detector | torchvision
  // classify: torchvision-style inference on a folder of images
  std::string imagesDir;
  int topK = 5;
  std::vector<std::string> evaluator;
  int benchWarmup = 10, benchIterations = 50;
  // latency protocol (bench.images > 0): a seeded sample of `images` validation images, cycled;
  // `rounds` rounds of `iterations` timed forwards each, every forward's time reported
  int benchImages = 0, benchRounds = 1;
  DistributedSettings distributed;
  ExportSettings exportSettings;
};

// Parse and validate; throws JobError (field path + message).
Job parseJob(const std::string& jsonText);
Job loadJobFile(const std::string& path);

}  // namespace smnas
