// The COCO loader under hostile annotations: file names that lead out of the images folder, boxes
// that are not finite, images whose size is not positive, and an image whose header claims an
// absurd size (refused from the header, before anything is decoded). Each is BadData (the
// trainer's exit 3) naming the file and record.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "data.hpp"
#include "protocol.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using smnas::BadData;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/smnas-test-data-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

json goodInstances() {
  return {{"images", json::array({{{"id", 1}, {"file_name", "a.png"}, {"width", 64}, {"height", 48}}})},
          {"annotations",
           json::array({{{"id", 1}, {"image_id", 1}, {"category_id", 3}, {"bbox", {2, 3, 10, 12}}, {"area", 120}, {"iscrowd", 0}}})},
          {"categories", json::array({{{"id", 3}, {"name", "box"}}})}};
}

void writeInstances(const fs::path& root, const json& inst) {
  fs::create_directories(root / "annotations");
  fs::create_directories(root / "train");
  std::ofstream(root / "annotations" / "instances_train.json") << inst.dump();
}

// the message of the BadData that loadCoco throws ("" when it loads)
std::string loadError(const fs::path& root) {
  try {
    smnas::loadCoco(root.string(), "train");
  } catch (const BadData& e) {
    return e.what();
  }
  return "";
}

// a PNG signature and IHDR chunk only: enough for a header read, nothing to decode
void writePngHeader(const fs::path& file, uint32_t w, uint32_t h) {
  const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  unsigned char ihdr[25] = {0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  for (int i = 0; i < 4; ++i) {
    ihdr[8 + i] = static_cast<unsigned char>(w >> (24 - 8 * i));
    ihdr[12 + i] = static_cast<unsigned char>(h >> (24 - 8 * i));
  }
  ihdr[16] = 8;  // bit depth
  ihdr[17] = 2;  // RGB
  std::ofstream f(file, std::ios::binary);
  f.write(reinterpret_cast<const char*>(sig), 8);
  f.write(reinterpret_cast<const char*>(ihdr), 25);
}

}  // namespace

TEST(Data, UnsafeFileNames) {
  EXPECT_EQ(smnas::unsafeFileName("a.png"), "");
  EXPECT_EQ(smnas::unsafeFileName("sub/a..b.png"), "");
  EXPECT_NE(smnas::unsafeFileName("../a.png"), "");
  EXPECT_NE(smnas::unsafeFileName("x/../../a.png"), "");
  EXPECT_NE(smnas::unsafeFileName("/etc/passwd"), "");
  EXPECT_NE(smnas::unsafeFileName(""), "");
  EXPECT_NE(smnas::unsafeFileName(std::string("a\0b", 3)), "");
}

TEST(Data, HostileAnnotationsAreBadDataNamingTheRecord) {
  TempDir d;
  writeInstances(d.path, goodInstances());
  EXPECT_EQ(loadError(d.path), "");

  struct Case {
    const char* what;
    void (*edit)(json&);
    const char* expected;
  };
  const Case cases[] = {
      {"dotdot", [](json& j) { j["images"][0]["file_name"] = "../secret.png"; }, "images[0].file_name '../secret.png' has a '..' segment"},
      {"absolute", [](json& j) { j["images"][0]["file_name"] = "/etc/passwd"; }, "images[0].file_name '/etc/passwd' is an absolute path"},
      {"zero width", [](json& j) { j["images"][0]["width"] = 0; }, "images[0]: width and height must be positive"},
      {"unknown category", [](json& j) { j["annotations"][0]["category_id"] = 77; }, "annotations[0].category_id 77 is not in categories"},
  };
  for (const Case& c : cases) {
    json inst = goodInstances();
    c.edit(inst);
    writeInstances(d.path, inst);
    const std::string err = loadError(d.path);
    EXPECT_NE(err.find("instances_train.json"), std::string::npos) << c.what << ": " << err;
    EXPECT_NE(err.find(c.expected), std::string::npos) << c.what << ": " << err;
  }
  // JSON has no infinity; 1e999 is how a file writes one (nlohmann reads it as inf)
  writeInstances(d.path, goodInstances());
  const fs::path file = d.path / "annotations" / "instances_train.json";
  std::string text = goodInstances().dump();
  text.replace(text.find(",10,"), 4, ",1e999,");
  std::ofstream(file) << text;
  const std::string err = loadError(d.path);
  EXPECT_TRUE(err.find("annotations[0].bbox has a value that is not a finite number") != std::string::npos ||
              err.find("not valid JSON") != std::string::npos)
      << err;
}

TEST(Data, AnAbsurdHeaderIsRefusedBeforeDecoding) {
  TempDir d;
  writeInstances(d.path, goodInstances());
  const smnas::CocoDataset ds = smnas::loadCoco(d.path.string(), "train");
  auto prepareError = [&]() -> std::string {
    try {
      smnas::prepareDetection(ds, /*index=*/0, /*inputW=*/64, /*inputH=*/64, /*jitterMin=*/1.0, /*jitterMax=*/1.0, /*flip=*/false,
                              /*seed=*/0, /*epoch=*/0, /*train=*/false);
    } catch (const BadData& e) {
      return e.what();
    }
    return "";
  };
  // a size stb_image would decode (300 MB): refused from the header, before any decoding
  writePngHeader(d.path / "train" / "a.png", 10000, 10000);
  EXPECT_NE(prepareError().find("a.png: image header says 10000x10000 but the annotation says 64x48"), std::string::npos) << prepareError();
  // beyond what stb_image accepts at all: its header read refuses it
  writePngHeader(d.path / "train" / "a.png", 100000, 100000);
  EXPECT_NE(prepareError().find("cannot read the image header of " + (d.path / "train" / "a.png").string()), std::string::npos)
      << prepareError();
}
