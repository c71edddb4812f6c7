#include "dist.hpp"

#include <torch/version.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "protocol.hpp"

// c10d's Gloo process group needs Gloo's headers (Debian: libgloo-dev; PyTorch wheels ship them);
// CMake defines SMNAS_WITH_GLOO (and USE_C10D_GLOO, which c10d's header tests) when it found them.
#if defined(SMNAS_WITH_GLOO)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#define SMNAS_DIST 1
#else
#define SMNAS_DIST 0
#endif
// NCCL for CUDA tensors: a CUDA build of PyTorch with c10d's NCCL header and nccl.h.
#if SMNAS_DIST && defined(SMNAS_WITH_CUDA) && __has_include(<nccl.h>) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define SMNAS_NCCL 1
#else
#define SMNAS_NCCL 0
#endif

namespace smnas {

namespace {
bool envInt(const char* name, int& out) {
  const char* v = std::getenv(name);
  if (!v || !*v) return false;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > 1 << 20)
    throw JobError(std::string("env ") + name, std::string("must be a non-negative integer, got '") + v + "'");
  out = static_cast<int>(x);
  return true;
}
}  // namespace

DistOptions distOptionsFor(const Job& job) {
  const DistributedSettings& d = job.distributed;
  DistOptions o;
  o.worldSize(d.worldSize).rank(d.rank).masterAddr(d.masterAddr).masterPort(d.masterPort).timeoutSeconds(d.timeoutSeconds);
  o.bucketBytes(static_cast<int64_t>(d.bucketMB * 1024 * 1024)).backend(d.backend);
  int v = 0;
  if (envInt("WORLD_SIZE", v)) o.worldSize(v);
  if (envInt("RANK", v)) o.rank(v);
  if (envInt("LOCAL_RANK", v)) o.localRank(v);
  if (envInt("MASTER_PORT", v)) o.masterPort(v);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) o.masterAddr(a);
  if (o.worldSize() < 1) throw JobError("distributed.worldSize", "must be >= 1 (WORLD_SIZE)");
  if (o.rank() >= o.worldSize())
    throw JobError("distributed.rank", "rank " + std::to_string(o.rank()) + " is not below the world size " +
                                           std::to_string(o.worldSize()) + " (RANK, WORLD_SIZE)");
  if (o.worldSize() > 1 && o.masterPort() <= 0) throw JobError("distributed.masterPort", "must be a TCP port (MASTER_PORT)");
  return o;
}

#if SMNAS_DIST
#if TORCH_VERSION_MAJOR >= 2
using PgBase = c10d::Backend;
#else
using PgBase = c10d::ProcessGroup;
#endif

struct Dist::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<PgBase> pg;
  std::string backend;
  std::chrono::milliseconds timeout{0};
  int rank = 0;

  // gradient buckets
  struct Bucket {
    torch::Tensor flat;
    std::vector<size_t> params;  // indices into grads
    std::vector<int64_t> offsets;
    size_t ready = 0;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::vector<torch::Tensor> params;
  std::vector<size_t> bucketOf;
  std::vector<bool> got;
  std::vector<float> hadGrad;  // 1 where this rank produced a gradient
  std::vector<Bucket> buckets;
  size_t nextLaunch = 0;
  bool inBackward = false;
  bool overlap = true;
  double weight = 1;
  std::mutex m;  // hooks may run on autograd's device threads

  torch::Device commDevice = torch::Device(torch::kCPU);  // nccl: the rank's CUDA device
  // Runs `op` on a copy of t on the communication device (if t is elsewhere) and copies back.
  template <typename Op>
  void onCommDevice(torch::Tensor& t, const char* what, Op op) {
    torch::NoGradGuard ng;
    std::vector<torch::Tensor> v{t.device() == commDevice && t.is_contiguous() ? t : t.to(commDevice).contiguous()};
    wait(op(v), what);
    if (!v[0].is_same(t)) t.copy_(v[0]);
  }
  void wait(const c10::intrusive_ptr<c10d::Work>& w, const char* what) {
    try {
      w->wait(timeout);
    } catch (const std::exception& e) {
      std::string msg = e.what();
      throw PeerLost("rank " + std::to_string(rank) + ": " + what + " failed (a peer process died or did not answer within " +
                     std::to_string(timeout.count() / 1000) + " s): " + msg.substr(0, msg.find('\n')));
    }
  }
  void launchReady() {  // in bucket order only: every rank issues the same sequence of collectives
    while (nextLaunch < buckets.size() && buckets[nextLaunch].ready == buckets[nextLaunch].params.size()) {
      std::vector<torch::Tensor> t{buckets[nextLaunch].flat};
      buckets[nextLaunch].work = pg->allreduce(t);
      nextLaunch++;
    }
  }
  void onGrad(size_t i, const torch::Tensor& g) {
    std::lock_guard<std::mutex> l(m);
    if (!inBackward || got[i]) return;
    got[i] = true;
    Bucket& b = buckets[bucketOf[i]];
    size_t slot = 0;
    while (b.params[slot] != i) slot++;
    torch::NoGradGuard ng;
    auto dst = b.flat.narrow(0, b.offsets[slot], g.numel());
    dst.copy_(g.reshape({-1}));
    if (weight != 1) dst.mul_(weight);
    hadGrad[i] = 1;
    b.ready++;
    if (overlap) launchReady();
  }
};
#else
struct Dist::Impl {};
#endif

Dist::Dist(const DistOptions& options, const torch::Device& dev) : options_(options) {
  if (!active()) return;
#if SMNAS_DIST
  impl_ = std::make_unique<Impl>();
  impl_->rank = rank();
  impl_->timeout = std::chrono::milliseconds(static_cast<int64_t>(options.timeoutSeconds() * 1000));
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(options.masterPort());
  so.isServer = root();
  so.numWorkers = static_cast<size_t>(world());
  so.waitWorkers = true;
  so.timeout = impl_->timeout;
  const std::string where = options.masterAddr() + ":" + std::to_string(options.masterPort());
  try {
    impl_->store = c10::make_intrusive<c10d::TCPStore>(options.masterAddr(), so);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    throw PeerLost("rank " + std::to_string(rank()) + ": rendezvous at " + where + " failed (" + std::to_string(world()) +
                   " processes expected within " + std::to_string(static_cast<int>(options.timeoutSeconds())) +
                   " s): " + msg.substr(0, msg.find('\n')));
  }
  bool nccl = false;
  if (options.backend() == DistBackend::Nccl || (options.backend() == DistBackend::Auto && dev.is_cuda())) {
#if SMNAS_NCCL
    nccl = dev.is_cuda();
#endif
    if (!nccl && options.backend() == DistBackend::Nccl)
      throw JobError("distributed.backend", "'nccl' needs a CUDA device and a libtorch built with NCCL; this build has " +
                                                std::string(SMNAS_NCCL ? "NCCL but the device is the CPU" : "no NCCL"));
  }
  try {
#if SMNAS_NCCL
    if (nccl) {
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = impl_->timeout;
      impl_->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, rank(), world(), o);
      impl_->backend = "nccl";
      impl_->commDevice = dev;
    }
#endif
    if (!nccl) {
      auto o = c10d::ProcessGroupGloo::Options::create(impl_->timeout);
      o->devices.push_back(
          c10d::ProcessGroupGloo::createDeviceForHostname(options.masterAddr() == "localhost" ? "127.0.0.1" : options.masterAddr()));
      o->threads = 2;
      impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, rank(), world(), o);
      impl_->backend = "gloo";
    }
  } catch (const JobError&) {
    throw;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    throw PeerLost("rank " + std::to_string(rank()) + ": creating the " + (nccl ? "nccl" : "gloo") + " process group at " + where +
                   " failed: " + msg.substr(0, msg.find('\n')));
  }
  logInfo("rank " + std::to_string(rank()) + " of " + std::to_string(world()) + ": " + impl_->backend + " process group, rendezvous " +
          where);
#else
  (void)dev;
  throw JobError("distributed.worldSize",
                 "this smnas-trainer was built without c10d's Gloo (install libgloo-dev and rebuild): only 1 process");
#endif
}

Dist::~Dist() = default;

std::string Dist::backendName() const {
#if SMNAS_DIST
  if (impl_) return impl_->backend;
#endif
  return "none";
}

void Dist::allreduceSum(torch::Tensor& t, const char* what) {
  if (!active()) return;
#if SMNAS_DIST
  impl_->onCommDevice(t, what, [&](std::vector<torch::Tensor>& v) { return impl_->pg->allreduce(v); });
#else
  (void)t, (void)what;
#endif
}

void Dist::allreduceMax(torch::Tensor& t, const char* what) {
  if (!active()) return;
#if SMNAS_DIST
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::MAX;
  impl_->onCommDevice(t, what, [&](std::vector<torch::Tensor>& v) { return impl_->pg->allreduce(v, o); });
#else
  (void)t, (void)what;
#endif
}

void Dist::broadcast(std::vector<torch::Tensor> tensors, const char* what) {
  if (!active()) return;
#if SMNAS_DIST
  for (auto& t : tensors) impl_->onCommDevice(t, what, [&](std::vector<torch::Tensor>& v) { return impl_->pg->broadcast(v); });
#else
  (void)tensors, (void)what;
#endif
}

std::vector<std::string> Dist::allgather(const std::string& bytes, const char* what) {
  if (!active()) return {bytes};
#if SMNAS_DIST
  const torch::Device dev = impl_->commDevice;
  auto len = torch::tensor({static_cast<int64_t>(bytes.size())}, torch::kLong).to(dev);
  std::vector<std::vector<torch::Tensor>> lens(1);
  for (int r = 0; r < world(); ++r) lens[0].push_back(torch::empty_like(len));
  std::vector<torch::Tensor> in{len};
  impl_->wait(impl_->pg->allgather(lens, in), what);
  int64_t maxLen = 1;
  for (auto& l : lens[0]) maxLen = std::max(maxLen, l.cpu().item<int64_t>());
  auto buf = torch::zeros({maxLen}, torch::kUInt8);
  if (!bytes.empty()) std::memcpy(buf.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  std::vector<torch::Tensor> in2{buf.to(dev)};
  std::vector<std::vector<torch::Tensor>> outs(1);
  for (int r = 0; r < world(); ++r) outs[0].push_back(torch::empty({maxLen}, in2[0].options()));
  impl_->wait(impl_->pg->allgather(outs, in2), what);
  std::vector<std::string> res;
  for (int r = 0; r < world(); ++r) {
    auto c = outs[0][r].cpu();
    res.emplace_back(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), static_cast<size_t>(lens[0][r].cpu().item<int64_t>()));
  }
  return res;
#else
  (void)what;
  return {bytes};
#endif
}

void Dist::attachGradients(const std::vector<torch::Tensor>& params) {
  if (!active()) return;
#if SMNAS_DIST
  Impl& I = *impl_;
  for (const auto& p : params)
    if (p.requires_grad()) I.params.push_back(p);
  I.bucketOf.assign(I.params.size(), 0);
  I.got.assign(I.params.size(), false);
  I.hadGrad.assign(I.params.size(), 0.f);
  // reverse order: the gradients of the last layers arrive first
  Impl::Bucket cur;
  int64_t curBytes = 0;
  auto close = [&] {
    if (cur.params.empty()) return;
    int64_t n = 0;
    for (size_t j : cur.params) n += I.params[j].numel();
    cur.flat = torch::zeros({n}, I.params[cur.params[0]].options().requires_grad(false));
    for (size_t j : cur.params) I.bucketOf[j] = I.buckets.size();
    I.buckets.push_back(std::move(cur));
    cur = Impl::Bucket();
    curBytes = 0;
  };
  for (size_t k = I.params.size(); k-- > 0;) {
    const auto& p = I.params[k];
    if (!cur.params.empty() && (p.scalar_type() != I.params[cur.params[0]].scalar_type() || p.device() != I.params[cur.params[0]].device()))
      close();
    int64_t off = 0;
    for (size_t j : cur.params) off += I.params[j].numel();
    cur.params.push_back(k);
    cur.offsets.push_back(off);
    curBytes += p.numel() * static_cast<int64_t>(p.element_size());
    if (curBytes >= options_.bucketBytes()) close();
  }
  close();
  for (size_t k = 0; k < I.params.size(); ++k) {
    Impl* ip = impl_.get();
    I.params[k].register_hook([ip, k](torch::Tensor g) { ip->onGrad(k, g); });
  }
  logInfo("gradient all-reduce: " + std::to_string(I.params.size()) + " tensors in " + std::to_string(I.buckets.size()) +
          " buckets of up to " + std::to_string(options_.bucketBytes() >> 20) + " MiB, started from the backward pass's hooks");
#else
  (void)params;
#endif
}

void Dist::overlapWithBackward(bool on) {
#if SMNAS_DIST
  if (impl_) impl_->overlap = on;
#else
  (void)on;
#endif
}

void Dist::beginBackward(double weight) {
  if (!active()) return;
#if SMNAS_DIST
  std::lock_guard<std::mutex> l(impl_->m);
  impl_->weight = weight;
  impl_->inBackward = true;
  impl_->nextLaunch = 0;
  std::fill(impl_->got.begin(), impl_->got.end(), false);
  std::fill(impl_->hadGrad.begin(), impl_->hadGrad.end(), 0.f);
  for (auto& b : impl_->buckets) {
    b.ready = 0;
    b.work.reset();
  }
#else
  (void)weight;
#endif
}

void Dist::finishBackward() {
  if (!active()) return;
#if SMNAS_DIST
  Impl& I = *impl_;
  {
    std::lock_guard<std::mutex> l(I.m);
    I.inBackward = false;
    torch::NoGradGuard ng;
    for (size_t k = 0; k < I.params.size(); ++k) {
      if (I.got[k]) continue;  // no gradient on this rank: counts zero
      Impl::Bucket& b = I.buckets[I.bucketOf[k]];
      size_t slot = 0;
      while (b.params[slot] != k) slot++;
      b.flat.narrow(0, b.offsets[slot], I.params[k].numel()).zero_();
      b.ready++;
      I.got[k] = true;
    }
    I.launchReady();
  }
  for (auto& b : I.buckets) I.wait(b.work, "gradient all-reduce");
  auto had = torch::tensor(I.hadGrad, torch::kFloat).to(I.params.empty() ? torch::Device(torch::kCPU) : I.params[0].device());
  std::vector<torch::Tensor> v{had};
  I.wait(I.pg->allreduce(v), "gradient presence all-reduce");
  had = v[0].cpu();
  auto hadA = had.accessor<float, 1>();
  for (size_t k = 0; k < I.params.size(); ++k) {
    auto& p = I.params[k];
    if (hadA[static_cast<int64_t>(k)] == 0) {
      p.mutable_grad() = torch::Tensor();
      continue;
    }
    Impl::Bucket& b = I.buckets[I.bucketOf[k]];
    size_t slot = 0;
    while (b.params[slot] != k) slot++;
    // a view of the bucket: the optimiser reads it before the next backward overwrites it
    p.mutable_grad() = b.flat.narrow(0, b.offsets[slot], p.numel()).view(p.sizes());
  }
#endif
}

}  // namespace smnas
