#include "checksum.hpp"

#include "launcher.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace fs = std::filesystem;

namespace smnas {

namespace {

constexpr std::array<uint32_t, 64> kRound = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
    0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
    0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
    0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
    0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
    0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

// FIPS 180-4's compression of `blocks` 64-byte blocks into the state h[8], one round at a time.
void compressPortable(uint32_t* h_, const unsigned char* p, size_t blocks) {
  for (; blocks > 0; --blocks, p += 64) {
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = (uint32_t(p[4 * i]) << 24) | (uint32_t(p[4 * i + 1]) << 16) | (uint32_t(p[4 * i + 2]) << 8) | p[4 * i + 3];
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h_[0], b2 = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kRound[i] + w[i];
      const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b2) ^ (a & c) ^ (b2 & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b2;
      b2 = a;
      a = t1 + t2;
    }
    h_[0] += a, h_[1] += b2, h_[2] += c, h_[3] += d, h_[4] += e, h_[5] += f, h_[6] += g, h_[7] += h;
  }
}

#if defined(__x86_64__)
// The same compression with the x86 SHA extensions (Intel's SHA-NI; AMD Zen and Intel since Ice
// Lake/Goldmont): SHA256RNDS2 does two rounds, SHA256MSG1/MSG2 the message schedule, four words
// at a time. Checkpoints are hashed after every write and before every resume: on the 2-core VM
// (2026-12-01) the portable rounds took 3.2 s for a 600 MB checkpoint, 19 % of a paper-space
// architecture check's samples.
__attribute__((target("sha,sse4.1,ssse3"))) void compressShaNi(uint32_t* h, const unsigned char* p, size_t blocks) {
  const __m128i byteSwap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  // the instructions keep the state as (A,B,E,F) and (C,D,G,H)
  __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h)), 0xB1);         // CDAB
  __m128i state1 = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 4)), 0x1B);  // EFGH
  __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);                                                    // ABEF
  state1 = _mm_blend_epi16(state1, tmp, 0xF0);                                                         // CDGH
  for (; blocks > 0; --blocks, p += 64) {
    const __m128i abefSaved = state0, cdghSaved = state1;
    __m128i w[4];  // message words 4g..4g+3 of round group g live in w[g % 4]
#pragma GCC unroll 16
    for (int g = 0; g < 16; ++g) {
      if (g < 4) w[g] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * g)), byteSwap);
      __m128i msg = _mm_add_epi32(w[g % 4], _mm_loadu_si128(reinterpret_cast<const __m128i*>(kRound.data() + 4 * g)));
      state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
      if (g >= 3 && g <= 14) {  // finish the words of group g + 1 (its MSG1 part ran two groups ago)
        __m128i& next = w[(g + 1) % 4];
        next = _mm_add_epi32(next, _mm_alignr_epi8(w[g % 4], w[(g + 3) % 4], 4));
        next = _mm_sha256msg2_epu32(next, w[g % 4]);
      }
      msg = _mm_shuffle_epi32(msg, 0x0E);
      state0 = _mm_sha256rnds2_epu32(state0, state1, msg);
      if (g >= 1 && g <= 12) w[(g + 3) % 4] = _mm_sha256msg1_epu32(w[(g + 3) % 4], w[g % 4]);
    }
    state0 = _mm_add_epi32(state0, abefSaved);
    state1 = _mm_add_epi32(state1, cdghSaved);
  }
  tmp = _mm_shuffle_epi32(state0, 0x1B);        // FEBA
  state1 = _mm_shuffle_epi32(state1, 0xB1);     // DCHG
  state0 = _mm_blend_epi16(tmp, state1, 0xF0);  // DCBA
  state1 = _mm_alignr_epi8(state1, tmp, 8);     // HGFE
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h), state0);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h + 4), state1);
}

bool cpuHasShaExtensions() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3)) return false;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return (b & bit_SHA) != 0;
}
#endif

using CompressFn = void (*)(uint32_t*, const unsigned char*, size_t);

CompressFn compressFor(Sha256Kernel kernel) {
#if defined(__x86_64__)
  static const bool shaNi = cpuHasShaExtensions();
  if (kernel == Sha256Kernel::Auto && shaNi) return compressShaNi;
#endif
  (void)kernel;
  return compressPortable;
}

class Sha256 {
 public:
  explicit Sha256(Sha256Kernel kernel = Sha256Kernel::Auto) : compress_(compressFor(kernel)) {}

  void update(const unsigned char* p, size_t n) {
    total_ += n;
    if (used_ > 0) {
      const size_t take = std::min(n, sizeof(block_) - used_);
      std::memcpy(block_ + used_, p, take);
      used_ += take;
      p += take;
      n -= take;
      if (used_ < sizeof(block_)) return;
      compress_(h_, block_, 1);
      used_ = 0;
    }
    const size_t whole = n / sizeof(block_);
    if (whole > 0) compress_(h_, p, whole);  // straight from the caller's buffer
    p += whole * sizeof(block_);
    n -= whole * sizeof(block_);
    std::memcpy(block_, p, n);
    used_ = n;
  }
  std::string hex() {
    const uint64_t bits = total_ * 8;
    const unsigned char one = 0x80, zero = 0;
    update(&one, 1);
    while (used_ != 56) update(&zero, 1);
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(bits >> (56 - 8 * i));
    update(len, 8);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (uint32_t v : h_)
      for (int s = 28; s >= 0; s -= 4) out += digits[(v >> s) & 0xf];
    return out;
  }

 private:
  CompressFn compress_;
  uint32_t h_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  unsigned char block_[64] = {};
  size_t used_ = 0;
  uint64_t total_ = 0;
};

}  // namespace

bool sha256UsesShaExtensions() { return compressFor(Sha256Kernel::Auto) != compressFor(Sha256Kernel::Portable); }

std::string sha256Hex(const std::string& bytes, Sha256Kernel kernel) {
  Sha256 s(kernel);
  s.update(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return s.hex();
}

std::string sha256File(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open for reading (" + std::strerror(errno) + ")");
  Sha256 s;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    s.update(reinterpret_cast<const unsigned char*>(buf.data()), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) throw std::runtime_error(path + ": read error");
  return s.hex();
}

std::string trainerBuildId(const std::string& launcherPath, const std::string& corePath) {
  const std::string core = sha256File(corePath);
  return "sha256:" + (launcherPath.empty() ? core : sha256Hex(sha256File(launcherPath) + core));
}

std::string checksumPath(const std::string& file) { return file + ".sha256"; }

void writeChecksumFile(const std::string& file, const std::string& contentOf) {
  const std::string line = sha256File(contentOf.empty() ? file : contentOf) + "  " + fs::path(file).filename().string() + "\n";
  const std::string target = checksumPath(file), tmp = target + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error(tmp + ": cannot create (" + std::strerror(errno) + ")");
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    throw std::runtime_error(tmp + ": write failed (" + std::strerror(err) + ")");
  }
  fs::rename(tmp, target);
}

ChecksumCheck verifyChecksumFile(const std::string& file) {
  std::ifstream in(checksumPath(file));
  if (!in) return {ChecksumStatus::Missing, "no checksum file " + checksumPath(file)};
  std::string recorded;
  in >> recorded;
  if (recorded.size() != 64 || recorded.find_first_not_of("0123456789abcdef") != std::string::npos)
    return {ChecksumStatus::Unreadable, "checksum file " + checksumPath(file) + " does not hold a sha256"};
  std::string actual;
  try {
    actual = sha256File(file);
  } catch (const std::exception& e) {
    return {ChecksumStatus::Unreadable, e.what()};
  }
  if (actual != recorded)
    return {ChecksumStatus::Mismatch,
            "checksum mismatch: sha256 of the file " + actual.substr(0, 12) + "... != recorded " + recorded.substr(0, 12) + "..."};
  return {ChecksumStatus::Ok, ""};
}

}  // namespace smnas
