#include "job.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace smnas {

namespace {

// Each kind's names, once: parsing, printing and the "one of" lists of job errors all read these.
template <typename E>
struct KindName {
  const char* name;
  E kind;
};
constexpr KindName<BlockKind> kBlockKinds[] = {{"basicblock", BlockKind::BasicBlock},
                                               {"bottleneck", BlockKind::Bottleneck},
                                               {"Xbottleneck", BlockKind::XBottleneck},
                                               {"mbblock", BlockKind::MBBlock}};
constexpr KindName<NormKind> kNormKinds[] = {{"bn", NormKind::BN}, {"gn", NormKind::GN}, {"gn+ws", NormKind::GNWS}};
constexpr KindName<RpnKind> kRpnKinds[] = {{"none", RpnKind::None}, {"rpn", RpnKind::Rpn}, {"ga-rpn", RpnKind::GaRpn}};
constexpr KindName<InitScheme> kInitSchemes[] = {{"mmdet", InitScheme::Mmdet}, {"torchvision", InitScheme::Torchvision}};
constexpr KindName<HeadKind> kHeadKinds[] = {{"2fc", HeadKind::TwoFc}, {"cascade", HeadKind::Cascade}, {"retina", HeadKind::Retina}};

template <typename E, size_t N>
E kindNamed(const KindName<E> (&table)[N], const std::string& n, const char* what) {
  for (const auto& k : table)
    if (n == k.name) return k.kind;
  throw std::invalid_argument("unknown " + std::string(what) + " '" + n + "'");
}
template <typename E, size_t N>
const char* nameOfKind(const KindName<E> (&table)[N], E kind) {
  for (const auto& k : table)
    if (k.kind == kind) return k.name;
  return "?";
}
template <typename E, size_t N>
std::set<std::string> kindNames(const KindName<E> (&table)[N]) {
  std::set<std::string> out;
  for (const auto& k : table) out.insert(k.name);
  return out;
}

}  // namespace

BlockKind blockKindNamed(const std::string& n) { return kindNamed(kBlockKinds, n, "block kind"); }
NormKind normKindNamed(const std::string& n) { return kindNamed(kNormKinds, n, "norm"); }
RpnKind rpnKindNamed(const std::string& n) { return kindNamed(kRpnKinds, n, "rpn kind"); }
HeadKind headKindNamed(const std::string& n) { return kindNamed(kHeadKinds, n, "head kind"); }
const char* blockKindName(BlockKind k) { return nameOfKind(kBlockKinds, k); }
const char* normKindName(NormKind k) { return nameOfKind(kNormKinds, k); }

using nlohmann::json;

namespace {

// A cursor into the job JSON that knows its dotted path, so every error names the field.
struct Field {
  const json* j;
  std::string path;

  [[noreturn]] void fail(const std::string& msg) const { throw JobError(path.empty() ? "<root>" : path, msg); }
  std::string sub(const std::string& key) const { return path.empty() ? key : path + "." + key; }

  bool has(const std::string& key) const { return j->is_object() && j->contains(key) && !(*j)[key].is_null(); }
  Field at(const std::string& key) const {
    if (!j->is_object()) fail("must be an object");
    if (!j->contains(key)) throw JobError(sub(key), "is required");
    return Field{&(*j)[key], sub(key)};
  }
  Field at(size_t i) const { return Field{&(*j)[i], path + "." + std::to_string(i)}; }

  const json& obj() const {
    if (!j->is_object()) fail("must be an object");
    return *j;
  }
  size_t size() const {
    if (!j->is_array()) fail("must be an array");
    return j->size();
  }
  double num(double lo = -1e300, double hi = 1e300, bool loOpen = false) const {
    if (!j->is_number()) fail("must be a number");
    double v = j->get<double>();
    if (v < lo || (loOpen && v == lo)) fail("must be " + std::string(loOpen ? "> " : ">= ") + fmt(lo) + ", got " + fmt(v));
    if (v > hi) fail("must be <= " + fmt(hi) + ", got " + fmt(v));
    return v;
  }
  int64_t integer(int64_t lo = INT64_MIN, int64_t hi = INT64_MAX) const {
    if (!j->is_number()) fail("must be an integer");
    // beyond int64 (an unsigned above INT64_MAX, a float out of range): say so, never wrap around
    if (j->is_number_unsigned() && j->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      fail("must be <= " + std::to_string(hi) + ", got " + std::to_string(j->get<uint64_t>()));
    if (j->is_number_float()) {
      const double d = j->get<double>();
      if (!std::isfinite(d) || std::floor(d) != d) fail("must be an integer");
      if (d < -9.2e18 || d > 9.2e18)
        fail(std::string(d < 0 ? "must be >= " + std::to_string(lo) : "must be <= " + std::to_string(hi)) + ", got " + fmt(d));
    }
    int64_t v = j->is_number_float() ? static_cast<int64_t>(j->get<double>()) : j->get<int64_t>();
    if (v < lo) fail("must be >= " + std::to_string(lo) + ", got " + std::to_string(v));
    if (v > hi) fail("must be <= " + std::to_string(hi) + ", got " + std::to_string(v));
    return v;
  }
  std::string str(bool nonEmpty = true) const {
    if (!j->is_string()) fail("must be a string");
    std::string s = j->get<std::string>();
    if (nonEmpty && s.empty()) fail("must not be empty");
    return s;
  }
  std::string oneOf(const std::set<std::string>& allowed) const {
    std::string s = str();
    if (!allowed.count(s)) {
      std::string list;
      for (auto& a : allowed) list += (list.empty() ? "" : ", ") + ("'" + a + "'");
      fail("must be one of " + list + ", got '" + s + "'");
    }
    return s;
  }
  bool boolean() const {
    if (!j->is_boolean()) fail("must be a boolean");
    return j->get<bool>();
  }
  static std::string fmt(double v) {
    std::ostringstream o;
    o << v;
    return o.str();
  }
};

BlockLayout parseBlock(const Field& f) {
  BlockLayout b;
  b.inChannels = f.at("inChannels").integer(1);
  b.outChannels = f.at("outChannels").integer(1);
  b.midChannels = f.at("midChannels").integer(1);
  b.stride = f.at("stride").integer(1, 2);
  b.groups = f.at("groups").integer(1);
  b.projection = f.at("projection").boolean();
  if (b.midChannels % b.groups != 0) f.at("groups").fail("must divide midChannels (" + std::to_string(b.midChannels) + ")");
  return b;
}

Layout parseLayout(const Field& f) {
  Layout L;
  L.arch = f.at("arch").str(false);
  L.width = f.at("input").at("width").integer(32);
  L.height = f.at("input").at("height").integer(32);
  if (L.width % 32 || L.height % 32) f.at("input").fail("width and height must be multiples of 32");

  Field bb = f.at("backbone");
  L.backbone.block = blockKindNamed(bb.at("block").oneOf(kindNames(kBlockKinds)));
  L.backbone.stemChannels = bb.at("stemChannels").integer(1);
  Field stages = bb.at("stages");
  if (stages.size() != 4) stages.fail("must have exactly 4 stages");
  const bool inverted = L.backbone.block == BlockKind::MBBlock;
  // The ResNet stem ends with stemChannels; the MobileNetV2 stem ends with its expansion-1 block,
  // whose width is the first block's input (16): search/layout-resolve.ts owns that number.
  int prev = L.backbone.stemChannels;
  for (size_t s = 0; s < 4; ++s) {
    Field blocks = stages.at(s).at("blocks");
    if (blocks.size() == 0) blocks.fail("must have at least one block");
    for (size_t i = 0; i < blocks.size(); ++i) {
      BlockLayout b = parseBlock(blocks.at(i));
      if (inverted && b.projection)
        blocks.at(i).at("projection").fail("must be false for mbblock (the residual exists only at stride 1 and equal widths)");
      if (inverted && b.groups != b.midChannels) blocks.at(i).at("groups").fail("must equal midChannels for mbblock (depthwise 3x3)");
      if (inverted && s == 0 && i == 0) prev = b.inChannels;  // the stem block's output width
      if (b.inChannels != prev) blocks.at(i).at("inChannels").fail("must equal the previous output channels " + std::to_string(prev));
      prev = b.outChannels;
      L.backbone.stages[s].push_back(b);
    }
  }
  Field sc = bb.at("stageChannels");
  if (sc.size() != 4) sc.fail("must have 4 entries");
  for (size_t s = 0; s < 4; ++s) {
    L.backbone.stageChannels[s] = sc.at(s).integer(1);
    if (L.backbone.stageChannels[s] != L.backbone.stages[s].back().outChannels)
      sc.at(s).fail("must equal the last block's outChannels of stage " + std::to_string(s + 1));
  }

  Field nk = f.at("neck");
  L.neck.kind = nk.at("kind").oneOf({"none", "fpn"}) == "fpn" ? NeckKind::Fpn : NeckKind::None;
  L.neck.channels = nk.at("channels").integer(1);
  if (L.neck.kind == NeckKind::Fpn) {
    L.neck.from = nk.at("from").integer(1, 4);
    L.neck.to = nk.at("to").integer(L.neck.from, 6);
  } else {
    if (L.neck.channels != L.backbone.stageChannels[2]) nk.at("channels").fail("must equal stage 3's channels for neck 'none'");
  }

  Field rp = f.at("rpn");
  L.rpn.kind = rpnKindNamed(rp.at("kind").oneOf(kindNames(kRpnKinds)));
  L.rpn.anchorsPerLocation = rp.at("anchorsPerLocation").integer(0);
  L.rpn.convChannels = rp.at("convChannels").integer(0);
  if (L.rpn.kind == RpnKind::Rpn && L.rpn.anchorsPerLocation != 3) rp.at("anchorsPerLocation").fail("must be 3 (3 ratios x 1 scale)");
  if (L.rpn.kind == RpnKind::GaRpn) {
    if (L.rpn.anchorsPerLocation != 1) rp.at("anchorsPerLocation").fail("must be 1 (one guided anchor per location)");
    L.rpn.deformGroups = rp.at("deformGroups").integer(1);
    if (L.rpn.convChannels % L.rpn.deformGroups != 0)
      rp.at("deformGroups").fail("must divide convChannels (" + std::to_string(L.rpn.convChannels) + ")");
  }
  if (L.rpn.kind != RpnKind::None && L.rpn.convChannels != L.neck.channels) rp.at("convChannels").fail("must equal the neck channels");

  Field hd = f.at("head");
  L.head.kind = headKindNamed(hd.at("kind").oneOf(kindNames(kHeadKinds)));
  L.head.numClasses = hd.at("numClasses").integer(1);
  if (L.head.kind == HeadKind::Retina) {
    if (L.rpn.kind != RpnKind::None) f.at("rpn").at("kind").fail("must be 'none' with a retina head");
    L.head.convChannels = hd.at("convChannels").integer(1);
    L.head.stackedConvs = hd.at("stackedConvs").integer(1);
    L.head.anchorsPerLocation = hd.at("anchorsPerLocation").integer(9, 9);
  } else {
    if (L.rpn.kind == RpnKind::None) f.at("rpn").at("kind").fail("a two-stage head needs rpn 'rpn' or 'ga-rpn'");
    L.head.roiSize = hd.at("roiSize").integer(7, 7);
    L.head.fcWidth = hd.at("fcWidth").integer(1);
    if (L.head.kind == HeadKind::Cascade) {
      L.head.stages = hd.at("stages").integer(2, 4);
      Field th = hd.at("iouThresholds");
      if (static_cast<int>(th.size()) != L.head.stages) th.fail("must have one threshold per stage");
      for (size_t i = 0; i < th.size(); ++i) L.head.iouThresholds.push_back(th.at(i).num(0, 1, true));
    }
  }
  return L;
}

Optimizer parseOptimizer(const Field& f) {
  Optimizer o;
  o.lr = f.at("lr").num(0, 1e300, true);
  o.momentum = f.at("momentum").num(0, 1);
  o.weightDecay = f.at("weightDecay").num(0);
  o.noDecayOnNormAndBias = f.has("noDecayOnNormAndBias") ? f.at("noDecayOnNormAndBias").boolean() : true;
  o.clipGradNorm = f.has("clipGradNorm") ? f.at("clipGradNorm").num(0) : 0;
  o.lrReferenceBatch = f.has("lrReferenceBatch") ? static_cast<int>(f.at("lrReferenceBatch").integer(1)) : 0;
  return o;
}

Schedule parseSchedule(const Field& f) {
  Schedule s;
  s.kind = f.at("kind").oneOf({"cosine", "step"});
  s.warmupFraction = f.has("warmupFraction") ? f.at("warmupFraction").num(0, 1) : 0;
  if (s.kind == "cosine") {
    s.minLr = f.at("minLr").num(0);
    s.warmupIterations = f.has("warmupIterations") ? f.at("warmupIterations").integer(0) : 0;
    s.warmupRatio = f.has("warmupRatio") ? f.at("warmupRatio").num(0, 1, true) : 0.001;
  } else {
    s.warmupIterations = f.at("warmupIterations").integer(0);
    s.warmupRatio = f.at("warmupRatio").num(0, 1, true);
    Field m = f.at("milestones");
    for (size_t i = 0; i < m.size(); ++i) s.milestones.push_back(static_cast<int>(m.at(i).integer(1)));
    s.gamma = f.at("gamma").num(0, 1, true);
  }
  return s;
}

void parseRecipeCommon(const Field& f, Recipe& r) {
  r.name = f.at("name").str();
  r.norm = normKindNamed(f.at("norm").oneOf(kindNames(kNormKinds)));
  r.epochs = f.at("epochs").integer(1);
  r.batchSize = f.at("batchSize").integer(1);
  r.optimizer = parseOptimizer(f.at("optimizer"));
  r.schedule = parseSchedule(f.at("schedule"));
  r.workers = f.has("workers") ? f.at("workers").integer(0, 64) : 2;
  r.maxIterations = f.has("maxIterations") ? f.at("maxIterations").integer(1) : 0;
  r.syncBn = f.has("syncBn") ? f.at("syncBn").boolean() : false;
  r.mixedPrecision = f.has("mixedPrecision") ? f.at("mixedPrecision").oneOf({"off", "bf16", "fp16"}) : "off";
}

Recipe parseDetectionRecipe(const Field& f) {
  Recipe r;
  parseRecipeCommon(f, r);
  Field aug = f.at("augment");
  r.flip = aug.at("flip").boolean();
  Field sj = aug.at("scaleJitter");
  if (sj.size() != 2) sj.fail("must be [min, max]");
  r.scaleJitter = {sj.at(0).num(0, 10, true), sj.at(1).num(0, 10, true)};
  if (r.scaleJitter[0] > r.scaleJitter[1]) sj.fail("min must be <= max");
  r.fcWidth = f.at("fcWidth").integer(1);
  Field rpn = f.at("rpn");
  r.rpnSamples = rpn.at("samplesPerImage").integer(1);
  r.rpnPosFraction = rpn.at("positiveFraction").num(0, 1, true);
  r.rpnTrainPreNms = rpn.at("trainPreNms").integer(1);
  r.rpnTrainPostNms = rpn.at("trainPostNms").integer(1);
  r.rpnTestPreNms = rpn.at("testPreNms").integer(1);
  r.rpnTestPostNms = rpn.at("testPostNms").integer(1);
  r.rpnNmsIou = rpn.at("nmsIou").num(0, 1, true);
  if (rpn.has("minPosIou")) r.rpnMinPosIou = rpn.at("minPosIou").num(0, 1);
  if (f.has("initScheme")) r.init = kindNamed(kInitSchemes, f.at("initScheme").oneOf(kindNames(kInitSchemes)), "initScheme");
  Field roi = f.at("roi");
  r.roiSamples = roi.at("samplesPerImage").integer(1);
  r.roiPosFraction = roi.at("positiveFraction").num(0, 1, true);
  Field t = f.at("test");
  r.testScoreThreshold = t.at("scoreThreshold").num(0, 1);
  r.testNmsIou = t.at("nmsIou").num(0, 1, true);
  r.testMaxPerImage = t.at("maxPerImage").integer(1);
  if (f.has("backbone")) {
    Field bb = f.at("backbone");
    bb.obj();
    if (bb.has("frozenStages")) r.backbone.frozenStages = static_cast<int>(bb.at("frozenStages").integer(-1, 4));
    if (bb.has("normEval")) r.backbone.normEval = bb.at("normEval").boolean();
  }
  return r;
}

Recipe parseClassificationRecipe(const Field& f) {
  Recipe r;
  parseRecipeCommon(f, r);
  r.cropSize = f.at("cropSize").integer(8);
  return r;
}

}  // namespace

Job parseJob(const std::string& text) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const std::exception& e) {
    throw JobError("<root>", std::string("not valid JSON: ") + e.what());
  }
  Field root{&doc, ""};
  root.obj();
  Job job;
  if (root.at("schemaVersion").integer() != 1) root.at("schemaVersion").fail("must be 1");
  job.command = root.at("command").oneOf({"train", "eval", "bench", "describe", "export", "classify-train", "classify-eval", "classify"});
  job.classification = job.command.rfind("classify", 0) == 0;
  job.outDir = root.at("outDir").str();
  job.seed = root.at("seed").integer(0);
  job.device = root.at("device").str();
  if (!(job.device == "cpu" ||
        (job.device.rfind("cuda:", 0) == 0 && job.device.size() > 5 && job.device.find_first_not_of("0123456789", 5) == std::string::npos)))
    root.at("device").fail("must be 'cpu' or 'cuda:<index>'");
  job.threads = root.has("threads") ? root.at("threads").integer(0, 1024) : 0;
  job.resume = root.has("resume") ? root.at("resume").boolean() : false;
  job.ckptEveryIterations = 0;
  job.ckptEverySeconds = 300;
  job.ckptKeep = 2;
  if (root.has("checkpoint")) {
    Field c = root.at("checkpoint");
    c.obj();
    if (c.has("everyIterations")) job.ckptEveryIterations = c.at("everyIterations").integer(0);
    if (c.has("everySeconds")) job.ckptEverySeconds = c.at("everySeconds").num(0);
    if (c.has("keep")) job.ckptKeep = c.at("keep").integer(1);
  }
  job.arch = root.at("arch").str();
  job.layout = parseLayout(root.at("layout"));
  if (job.command == "classify") {
    // torchvision-style inference: a BN classifier with numClasses outputs over a folder of images
    job.recipe.norm = NormKind::BN;
    job.recipe.batchSize = 1;
    job.recipe.workers = 0;
    job.numClasses = root.has("numClasses") ? root.at("numClasses").integer(1) : 1000;
    job.imagesDir = root.at("images").str();
    job.topK = root.has("topK") ? root.at("topK").integer(1, job.numClasses) : std::min(5, job.numClasses);
    job.initWeights = root.at("initWeights").str();
  } else if (job.classification) {
    job.recipe = parseClassificationRecipe(root.at("recipe"));
  } else {
    job.recipe = parseDetectionRecipe(root.at("recipe"));
    job.numClasses = root.at("numClasses").integer(1);
    if (job.layout.head.numClasses != job.numClasses)
      root.at("layout").at("head").at("numClasses").fail("must equal numClasses (" + std::to_string(job.numClasses) + ")");
    if (root.has("initKind")) job.initKind = root.at("initKind").oneOf({"backbone", "detector", "torchvision"});
    if (root.has("evaluator")) {
      Field ev = root.at("evaluator");
      if (ev.size() == 0) ev.fail("must not be empty");
      for (size_t i = 0; i < ev.size(); ++i) job.evaluator.push_back(ev.at(i).str());
    }
    if (job.command == "export") {
      Field e = root.at("export");
      e.obj();
      ExportSettings& x = job.exportSettings;
      x.out = e.at("out").str();
      Field size = e.at("inputSize");
      if (size.j->is_string()) {
        if (size.oneOf({"dynamic"}) == "dynamic") x.dynamic = true;
      } else {
        if (size.size() != 2) size.fail("must be 'dynamic' or [height, width]");
        x.height = static_cast<int>(size.at(size_t{0}).integer(32, 8192));
        x.width = static_cast<int>(size.at(size_t{1}).integer(32, 8192));
        if (x.height % 32 != 0 || x.width % 32 != 0)
          size.fail("height and width must be multiples of 32 (evaluation pads images to them), got [" + std::to_string(x.height) + ", " +
                    std::to_string(x.width) + "]");
      }
      if (e.has("opset")) x.opset = static_cast<int>(e.at("opset").integer(16, 18));
      if (e.has("parityImages")) x.parityImages = static_cast<int>(e.at("parityImages").integer(0, 1000));
    }
    if (root.has("bench")) {
      Field b = root.at("bench");
      if (b.has("warmup")) job.benchWarmup = b.at("warmup").integer(0);
      if (b.has("iterations")) job.benchIterations = b.at("iterations").integer(1);
      if (b.has("images")) job.benchImages = b.at("images").integer(1, 100000);
      if (b.has("rounds")) job.benchRounds = b.at("rounds").integer(1, 100000);
    }
  }
  // CPU autocast computes in bf16 only; fp16 training needs CUDA (and its loss scaling)
  if (job.device == "cpu" && job.recipe.mixedPrecision == "fp16")
    root.at("recipe").at("mixedPrecision").fail("fp16 needs a CUDA device; CPU autocast supports 'bf16'");
  if (root.has("distributed")) {
    Field d = root.at("distributed");
    d.obj();
    DistributedSettings& s = job.distributed;
    if (d.has("worldSize")) s.worldSize = static_cast<int>(d.at("worldSize").integer(1, 4096));
    if (d.has("rank")) s.rank = static_cast<int>(d.at("rank").integer(0, 4095));
    if (d.has("masterAddr")) s.masterAddr = d.at("masterAddr").str();
    if (d.has("masterPort")) s.masterPort = static_cast<int>(d.at("masterPort").integer(1, 65535));
    if (d.has("timeoutSeconds")) s.timeoutSeconds = d.at("timeoutSeconds").num(0, 86400, true);
    if (d.has("bucketMB")) s.bucketMB = d.at("bucketMB").num(0, 4096, true);
    if (d.has("backend")) {
      std::string b = d.at("backend").oneOf({"auto", "gloo", "nccl"});
      s.backend = b == "gloo" ? DistBackend::Gloo : b == "nccl" ? DistBackend::Nccl : DistBackend::Auto;
    }
    if (s.rank >= s.worldSize) d.at("rank").fail("must be below worldSize (" + std::to_string(s.worldSize) + ")");
  }
  if (root.has("initWeights")) job.initWeights = root.at("initWeights").str();
  bool needsData = (job.classification && job.command != "classify") || job.command == "train" || job.command == "eval";
  if (root.has("data")) {
    Field d = root.at("data");
    job.hasData = true;
    job.dataRoot = d.at("root").str();
    if (d.has("trainSplit")) job.trainSplit = d.at("trainSplit").str();
    if (d.has("valSplit")) job.valSplit = d.at("valSplit").str();
  } else if (needsData) {
    throw JobError("data", "is required for '" + job.command + "'");
  }
  if (job.command == "eval" && job.initWeights.empty())
    throw JobError("initWeights", "is required for 'eval' (the detector weights to evaluate)");
  if (job.command == "classify-eval" && job.initWeights.empty()) throw JobError("initWeights", "is required for 'classify-eval'");
  return job;
}

Job loadJobFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw JobError("<file>", "cannot read job file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parseJob(ss.str());
}

}  // namespace smnas
