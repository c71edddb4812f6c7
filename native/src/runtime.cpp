#include "runtime.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "checksum.hpp"
#include "protocol.hpp"

// The CUDA caching allocator's statistics: only where Torch was found with CUDA (CMake defines
// SMNAS_WITH_CUDA) and its c10/cuda headers plus the CUDA runtime headers are there. Debian's
// CPU libtorch ships c10/cuda headers but no cuda_runtime_api.h, so both are checked.
#if defined(SMNAS_WITH_CUDA) && __has_include(<c10/cuda/CUDACachingAllocator.h>) && __has_include(<cuda_runtime_api.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#define SMNAS_CUDA_MEMORY_STATS 1
#else
#define SMNAS_CUDA_MEMORY_STATS 0
#if defined(SMNAS_WITH_CUDA)
#warning "Torch has CUDA but c10/cuda or CUDA runtime headers are missing: peakMemoryMB on CUDA falls back to the process RSS"
#endif
#endif

namespace fs = std::filesystem;

namespace smnas {

std::atomic<bool> gStopRequested{false};

namespace {
void onSignal(int) { gStopRequested.store(true); }
// what the last loadNewestCheckpoint skipped, for emitStarted
nlohmann::json gSkippedCheckpoints = nlohmann::json::array();
}  // namespace

void installSignalHandlers() {
  std::signal(SIGTERM, onSignal);
  std::signal(SIGINT, onSignal);
  // a file-size limit (RLIMIT_FSIZE) then fails the write with EFBIG, reported like a full disk
  // ("cannot write checkpoint <path>: ..."), instead of killing the trainer without a word
  std::signal(SIGXFSZ, SIG_IGN);
}

torch::Device setupDevice(const Job& job, int localRank) {
  int threads = job.threads > 0 ? job.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  torch::manual_seed(job.seed);
  if (job.device == "cpu") return torch::Device(torch::kCPU);
  if (!torch::cuda::is_available()) throw JobError("device", "'" + job.device + "' requested but this build/machine has no CUDA device");
  int index = std::stoi(job.device.substr(5)) + localRank;
  if (index >= static_cast<int>(torch::cuda::device_count()))
    throw JobError("device", "'" + job.device + "'" + (localRank ? " + LOCAL_RANK " + std::to_string(localRank) : std::string()) +
                                 ": no such CUDA device");
  at::globalContext().setBenchmarkCuDNN(true);
  return torch::Device(torch::kCUDA, index);
}

void emitStarted(const Job& job, const nlohmann::json& resumedFrom, torch::nn::Module& model) {
  int64_t params = 0;
  for (const auto& p : model.parameters()) params += p.numel();
  nlohmann::json m = {{"type", "started"},    {"command", job.command},        {"arch", job.arch},
                      {"device", job.device}, {"torchVersion", TORCH_VERSION}, {"threads", at::get_num_threads()},
                      {"params", params}};
  m["resumedFrom"] = resumedFrom;
  if (!gSkippedCheckpoints.empty()) m["skippedCheckpoints"] = gSkippedCheckpoints;
  emit(m);
}

double learningRate(const Recipe& r, int64_t iter, int64_t total, int64_t itersPerEpoch) {
  const Schedule& s = r.schedule;
  const double base = r.optimizer.lr;
  double lr;
  if (s.kind == "cosine") {
    double t = total > 0 ? static_cast<double>(iter) / total : 0;
    lr = s.minLr + 0.5 * (base - s.minLr) * (1 + std::cos(M_PI * t));
  } else {
    int64_t epoch = itersPerEpoch > 0 ? iter / itersPerEpoch : 0;
    lr = base;
    for (int m : s.milestones)
      if (epoch >= m) lr *= s.gamma;
  }
  const int64_t warmup = std::max<int64_t>(s.warmupIterations, std::llround(s.warmupFraction * static_cast<double>(total)));
  if (iter < warmup) lr *= s.warmupRatio + (1 - s.warmupRatio) * static_cast<double>(iter) / static_cast<double>(warmup);
  return lr;
}

std::unique_ptr<torch::optim::SGD> makeSgd(torch::nn::Module& model, const Optimizer& o) {
  std::vector<torch::Tensor> decay, noDecay;
  for (auto& p : model.parameters()) {
    if (!p.requires_grad()) continue;
    (o.noDecayOnNormAndBias && p.dim() <= 1 ? noDecay : decay).push_back(p);
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(
      decay, std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weightDecay)));
  if (!noDecay.empty())
    groups.emplace_back(noDecay,
                        std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(0)));
  return std::make_unique<torch::optim::SGD>(groups, torch::optim::SGDOptions(o.lr).momentum(o.momentum).weight_decay(o.weightDecay));
}

void setLr(torch::optim::SGD& opt, double lr) {
  for (auto& g : opt.param_groups()) static_cast<torch::optim::SGDOptions&>(g.options()).lr(lr);
}

namespace {
fs::path checkpointDir(const Job& job) { return fs::path(job.outDir) / "checkpoints"; }

std::vector<std::pair<int64_t, fs::path>> listCheckpoints(const Job& job) {
  std::vector<std::pair<int64_t, fs::path>> out;
  if (!fs::is_directory(checkpointDir(job))) return out;
  for (auto& e : fs::directory_iterator(checkpointDir(job))) {
    std::string n = e.path().filename().string();
    if (n.rfind("ckpt-", 0) == 0 && n.size() > 8 && n.substr(n.size() - 3) == ".pt") {
      try {
        out.push_back({std::stoll(n.substr(5, n.size() - 8)), e.path()});
      } catch (...) {
      }
    }
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.first > b.first; });
  return out;
}
}  // namespace

std::string saveCheckpoint(const Job& job, torch::nn::Module& model, torch::optim::Optimizer& opt, const TrainPosition& pos) {
  fs::path path = checkpointDir(job) / ("ckpt-" + std::to_string(pos.iteration) + ".pt");
  fs::path tmp = path;
  tmp += ".tmp";
  torch::serialize::OutputArchive root, m, o;
  model.save(m);
  opt.save(o);
  root.write("model", m);
  root.write("optimizer", o);
  root.write("iteration", torch::tensor(pos.iteration));
  root.write("epoch", torch::tensor(pos.epoch));
  root.write("batchInEpoch", torch::tensor(pos.batchInEpoch));
  root.write("seed", torch::tensor(job.seed));
  root.write("globalBatch", torch::tensor(static_cast<int64_t>(job.recipe.batchSize) * job.distributed.worldSize));
  root.write("complete", torch::tensor(1));  // read last on load: a truncated archive lacks it
  try {
    fs::create_directories(checkpointDir(job));
    // temp files an earlier, killed attempt left (one trainer per run folder: activities' pid file)
    for (auto& e : fs::directory_iterator(checkpointDir(job)))
      if (e.path().extension() == ".tmp") fs::remove(e.path());
    root.save_to(tmp.string());
    // the checksum first: a checkpoint never exists without its sidecar (one without is an older
    // trainer's); a crash between the two renames leaves a sidecar that fails verification
    writeChecksumFile(path.string(), tmp.string());
    fs::rename(tmp, path);
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove(tmp, ec);
    fs::remove(checksumPath(path.string()) + ".tmp", ec);
    const std::string msg = e.what();
    throw std::runtime_error("cannot write checkpoint " + path.string() + ": " + msg.substr(0, msg.find('\n')));
  }
  auto all = listCheckpoints(job);
  for (size_t i = job.ckptKeep; i < all.size(); ++i) {
    fs::remove(all[i].second);
    fs::remove(checksumPath(all[i].second.string()));
  }
  emit({{"type", "checkpoint"}, {"path", path.string()}, {"epoch", pos.epoch}, {"iteration", pos.iteration}});
  return path.string();
}

bool loadNewestCheckpoint(const Job& job, torch::nn::Module& model, torch::optim::Optimizer& opt, TrainPosition& pos, std::string& path) {
  gSkippedCheckpoints = nlohmann::json::array();
  auto skip = [](const fs::path& p, const std::string& reason) {
    logWarn("skipping checkpoint " + p.string() + ": " + reason);
    gSkippedCheckpoints.push_back({{"path", p.string()}, {"reason", reason}});
  };
  for (auto& [iter, p] : listCheckpoints(job)) {
    const ChecksumCheck chk = verifyChecksumFile(p.string());
    if (chk.status == ChecksumStatus::Mismatch || chk.status == ChecksumStatus::Unreadable) {
      skip(p, chk.detail);
      continue;
    }
    if (chk.status == ChecksumStatus::Missing)
      logWarn("checkpoint " + p.string() + " has no checksum file (an older trainer's): loading it unverified");
    try {
      torch::serialize::InputArchive root, m, o;
      root.load_from(p.string());
      torch::Tensor t;
      root.read("seed", t);
      if (t.item<int64_t>() != job.seed) {
        skip(p, "written with another seed (" + std::to_string(t.item<int64_t>()) + ")");
        continue;
      }
      root.read("model", m);
      root.read("optimizer", o);
      model.load(m);
      opt.load(o);
      root.read("iteration", t);
      pos.iteration = t.item<int64_t>();
      root.read("epoch", t);
      pos.epoch = t.item<int64_t>();
      root.read("batchInEpoch", t);
      pos.batchInEpoch = t.item<int64_t>();
      pos.globalBatch = root.try_read("globalBatch", t) ? t.item<int64_t>() : 0;
      root.read("complete", t);
      path = p.string();
      return true;
    } catch (const std::exception& e) {
      std::string msg = e.what();
      msg = msg.substr(0, msg.find('\n'));
      logWarn("skipping unreadable checkpoint " + p.string() + ": " + msg);
      gSkippedCheckpoints.push_back({{"path", p.string()}, {"reason", "unreadable: " + msg}});
    }
  }
  return false;
}

nlohmann::json runEvaluator(const std::vector<std::string>& argv, const std::string& gt, const std::string& dets) {
  std::vector<std::string> args = argv;
  args.insert(args.end(), {"--gt", gt, "--dets", dets, "--json"});
  int pipefd[2];
  if (pipe(pipefd) != 0) throw std::runtime_error("evaluator: pipe failed");
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("evaluator: fork failed");
  if (pid == 0) {
    dup2(pipefd[1], 1);
    close(pipefd[0]);
    close(pipefd[1]);
    std::vector<char*> cargs;
    for (auto& a : args) cargs.push_back(const_cast<char*>(a.c_str()));
    cargs.push_back(nullptr);
    execvp(cargs[0], cargs.data());
    _exit(127);
  }
  close(pipefd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) out.append(buf, n);
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("evaluator '" + args[0] + "' failed with exit status " +
                             std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  std::istringstream lines(out);
  std::string line;
  nlohmann::json found;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("stats")) found = j;
  }
  if (found.is_null()) throw std::runtime_error("evaluator '" + args[0] + "' printed no {\"stats\": ...} line");
  return found;
}

bool peakMemoryIsDevice(const torch::Device& dev) { return SMNAS_CUDA_MEMORY_STATS && dev.is_cuda(); }

double peakMemoryMB(const torch::Device& dev) {
#if SMNAS_CUDA_MEMORY_STATS
  if (dev.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(dev.index());
    // index 0 = StatType::AGGREGATE (all pools) in 1.13 and 2.x alike
    return static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024.0);
  }
#endif
  (void)dev;
  return peakRssMB();
}

void resetPeakMemory(const torch::Device& dev) {
#if SMNAS_CUDA_MEMORY_STATS
  if (dev.is_cuda()) {
    torch::cuda::synchronize(dev.index());
    c10::cuda::CUDACachingAllocator::resetPeakStats(dev.index());
  }
#endif
  (void)dev;
}

bool LossScaler::unscale(const std::vector<torch::Tensor>& params) {
  if (!enabled) return true;
  torch::NoGradGuard ng;
  bool finite = true;
  std::vector<torch::Tensor> norms;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    p.mutable_grad().div_(factor);
    norms.push_back(p.grad().abs().max().to(torch::kFloat).reshape({1}));
  }
  if (!norms.empty()) finite = allFinite(torch::cat(norms));
  return finite;
}

void LossScaler::update(bool finite) {
  if (!enabled) return;
  if (!finite) {
    factor *= 0.5;
    goodSteps = 0;
    skippedSteps++;
  } else if (++goodSteps >= 2000) {
    factor *= 2.0;
    goodSteps = 0;
  }
}

bool LossScaler::step(torch::optim::Optimizer& opt, const std::vector<torch::Tensor>& params, double clipGradNorm) {
  const bool gradsFinite = unscale(params);
  if (gradsFinite) {
    if (clipGradNorm > 0) torch::nn::utils::clip_grad_norm_(params, clipGradNorm);
    opt.step();
  }
  update(gradsFinite);
  return gradsFinite;
}

void clearGradients(const std::vector<torch::Tensor>& params) {
  for (const auto& p : params)
    if (p.grad().defined()) p.mutable_grad() = torch::Tensor();
}

void writeFileAtomic(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    f << content;
    if (!f) throw std::runtime_error("cannot write " + tmp);
  }
  fs::rename(tmp, path);
}

bool allFinite(const torch::Tensor& t) { return torch::isfinite(t).all().item<bool>(); }

}  // namespace smnas
