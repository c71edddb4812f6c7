// Checkpoint integrity: SHA-256 (FIPS 180-4 test vectors), the `.sha256` sidecars, and the resume
// fallback: a corrupt or truncated newest checkpoint is skipped (reason in `started`), the previous
// kept one is loaded, and with none usable the training starts from scratch.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <vector>
#include <nlohmann/json.hpp>

#include "checksum.hpp"
#include "runtime.hpp"

using namespace smnas;
namespace fs = std::filesystem;

namespace {
fs::path freshDir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("smnas-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void writeText(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

void flipByte(const fs::path& p, std::streamoff at) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(at);
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(at);
  f.write(&c, 1);
}

// the `started` line of emitStarted, parsed
nlohmann::json startedLine(const Job& job, const nlohmann::json& resumed, torch::nn::Module& model) {
  testing::internal::CaptureStdout();
  emitStarted(job, resumed, model);
  return nlohmann::json::parse(testing::internal::GetCapturedStdout());
}
}  // namespace

TEST(Checksum, Sha256TestVectors) {
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // one million 'a': many blocks, through the file reader's 1 MiB chunks
  const fs::path dir = freshDir("sha");
  writeText(dir / "a", std::string(1000000, 'a'));
  EXPECT_EQ(sha256File((dir / "a").string()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_THROW(sha256File((dir / "missing").string()), std::runtime_error);
  fs::remove_all(dir);
}

// The SHA-extension rounds (where this CPU has them) against the portable ones: every length
// around the block and padding boundaries, and random contents, fed whole and in odd pieces.
TEST(Checksum, Sha256KernelsAgree) {
  std::mt19937 rng(/*seed=*/7);
  for (size_t len : {0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4096, 65537}) {
    std::string bytes(len, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    EXPECT_EQ(sha256Hex(bytes, Sha256Kernel::Auto), sha256Hex(bytes, Sha256Kernel::Portable)) << "length " << len;
  }
  for (int trial = 0; trial < 200; ++trial) {
    std::string bytes(rng() % 3000, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    EXPECT_EQ(sha256Hex(bytes, Sha256Kernel::Auto), sha256Hex(bytes, Sha256Kernel::Portable)) << "length " << bytes.size();
  }
  EXPECT_EQ(sha256Hex(std::string(1000000, 'a'), Sha256Kernel::Portable),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  std::printf("[ sha256   ] this CPU %s the SHA extensions\n", sha256UsesShaExtensions() ? "runs on" : "has no");
}

TEST(Checksum, SidecarDetectsCorruptionAndTruncation) {
  const fs::path dir = freshDir("sidecar");
  const std::string f = (dir / "ckpt-7.pt").string();
  writeText(f, std::string(5000, 'x') + "tail");
  EXPECT_EQ(verifyChecksumFile(f).status, ChecksumStatus::Missing);
  writeChecksumFile(f);
  std::ifstream in(checksumPath(f));
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, sha256File(f) + "  ckpt-7.pt");  // sha256sum's format
  EXPECT_FALSE(fs::exists(checksumPath(f) + ".tmp"));
  EXPECT_EQ(verifyChecksumFile(f).status, ChecksumStatus::Ok);
  flipByte(f, 2500);
  const ChecksumCheck bad = verifyChecksumFile(f);
  EXPECT_EQ(bad.status, ChecksumStatus::Mismatch);
  EXPECT_NE(bad.detail.find("checksum mismatch"), std::string::npos) << bad.detail;
  flipByte(f, 2500);
  EXPECT_EQ(verifyChecksumFile(f).status, ChecksumStatus::Ok);
  fs::resize_file(f, 3000);
  EXPECT_EQ(verifyChecksumFile(f).status, ChecksumStatus::Mismatch);
  writeText(checksumPath(f), "not a checksum\n");
  EXPECT_EQ(verifyChecksumFile(f).status, ChecksumStatus::Unreadable);
  fs::remove_all(dir);
}

TEST(Checksum, ResumeFallsBackToThePreviousCheckpointThenToScratch) {
  const fs::path dir = freshDir("ckpt-fallback");
  Job job;
  job.command = "train";
  job.arch = "linear";
  job.device = "cpu";
  job.outDir = dir.string();
  job.seed = 3;
  job.ckptKeep = 2;
  torch::manual_seed(1);
  torch::nn::Linear model(/*in_features=*/4, /*out_features=*/2);
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(/*lr=*/0.1).momentum(0.9));
  auto step = [&] {
    opt.zero_grad();
    model->forward(torch::ones({3, 4})).sum().backward();
    opt.step();
  };
  TrainPosition pos;
  std::vector<std::string> written;
  testing::internal::CaptureStdout();
  for (int i = 1; i <= 3; ++i) {
    step();
    pos.stepDone(/*batchIndex=*/i - 1, /*itersPerEpoch=*/100);
    written.push_back(saveCheckpoint(job, *model, opt, pos));
  }
  testing::internal::GetCapturedStdout();
  // keep=2: the oldest checkpoint went with its sidecar; each kept one has a matching sidecar
  EXPECT_FALSE(fs::exists(written[0]));
  EXPECT_FALSE(fs::exists(checksumPath(written[0])));
  for (int i = 1; i <= 2; ++i) EXPECT_EQ(verifyChecksumFile(written[i]).status, ChecksumStatus::Ok) << written[i];
  const torch::Tensor weightAt3 = model->weight.clone();

  // a bit flip in the newest (torch would still read it): the checksum rejects it, iteration 2 is used
  flipByte(written[2], static_cast<std::streamoff>(fs::file_size(written[2]) / 2));
  torch::nn::Linear fresh(/*in_features=*/4, /*out_features=*/2);
  torch::optim::SGD opt2(fresh->parameters(), torch::optim::SGDOptions(/*lr=*/0.1).momentum(0.9));
  TrainPosition got;
  std::string path;
  ASSERT_TRUE(loadNewestCheckpoint(job, *fresh, opt2, got, path));
  EXPECT_EQ(path, written[1]);
  EXPECT_EQ(got.iteration, 2);
  EXPECT_FALSE(fresh->weight.equal(weightAt3));
  nlohmann::json started = startedLine(job, {{"path", path}, {"epoch", got.epoch}, {"iteration", got.iteration}}, *fresh);
  ASSERT_EQ(started["skippedCheckpoints"].size(), 1u) << started.dump();
  EXPECT_EQ(started["skippedCheckpoints"][0]["path"], written[2]);
  EXPECT_NE(started["skippedCheckpoints"][0]["reason"].get<std::string>().find("checksum mismatch"), std::string::npos);

  // the previous one truncated too: nothing usable, the training starts from the beginning
  fs::resize_file(written[1], fs::file_size(written[1]) / 3);
  TrainPosition none;
  EXPECT_FALSE(loadNewestCheckpoint(job, *fresh, opt2, none, path));
  EXPECT_EQ(none.iteration, 0);
  started = startedLine(job, nullptr, *fresh);
  EXPECT_TRUE(started["resumedFrom"].is_null());
  ASSERT_EQ(started["skippedCheckpoints"].size(), 2u) << started.dump();

  // a temp file a killed writer left is removed by the next save
  writeText(dir / "checkpoints" / "ckpt-9.pt.tmp", "half");
  testing::internal::CaptureStdout();
  saveCheckpoint(job, *model, opt, pos);
  testing::internal::GetCapturedStdout();
  EXPECT_FALSE(fs::exists(dir / "checkpoints" / "ckpt-9.pt.tmp"));
  fs::remove_all(dir);
}

TEST(Checksum, AFailedCheckpointWriteNamesThePathAndLeavesNoTempFile) {
  const fs::path dir = freshDir("ckpt-fail");
  writeText(dir / "file", "x");  // outDir below a regular file: every write fails
  Job job;
  job.outDir = (dir / "file" / "run").string();
  job.seed = 1;
  job.ckptKeep = 2;
  torch::nn::Linear model(/*in_features=*/2, /*out_features=*/1);
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(/*lr=*/0.1));
  TrainPosition pos;
  pos.iteration = 5;
  try {
    saveCheckpoint(job, *model, opt, pos);
    FAIL() << "expected the write to fail";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot write checkpoint " + job.outDir + "/checkpoints/ckpt-5.pt"), std::string::npos)
        << e.what();
  }
  fs::remove_all(dir);
}

// Throughput of the two kernels on 256 MB in memory, median of 5 (disabled; BENCHMARKS.md,
// "Suite time"): native/build/smnas-unit-tests --gtest_also_run_disabled_tests
// --gtest_filter=Checksum.DISABLED_Speed
TEST(Checksum, DISABLED_Speed) {
  std::string bytes(256u << 20, '\0');
  std::mt19937 rng(/*seed=*/3);
  for (size_t i = 0; i < bytes.size(); i += 4) {
    const uint32_t v = rng();
    std::memcpy(&bytes[i], &v, 4);
  }
  auto mbPerSecond = [&](Sha256Kernel kernel) {
    std::vector<double> seconds;
    for (int i = 0; i < 5; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      EXPECT_EQ(sha256Hex(bytes, kernel).size(), 64u);
      seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(seconds.begin(), seconds.end());
    return static_cast<double>(bytes.size()) / seconds[2] / 1e6;
  };
  const double portable = mbPerSecond(Sha256Kernel::Portable), automatic = mbPerSecond(Sha256Kernel::Auto);
  std::printf("sha256 of 256 MB: portable %.0f MB/s, auto (%s) %.0f MB/s, ratio %.1f\n", portable,
              sha256UsesShaExtensions() ? "SHA extensions" : "portable", automatic, automatic / portable);
}
