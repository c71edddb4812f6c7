// The job-file parser under hostile input: every field of the valid jobs in tests/fixtures (written
// by the TypeScript job builder; test/native/job-fixtures.test.ts keeps them current) is replaced
// by hostile values of every JSON type, deleted, or joined by an unknown sibling. Each mutation is
// either parsed into a job or rejected with a JobError (the trainer's exit 2, invalid_job) whose
// field names a real place of the document; a value of the wrong type or a missing field is named
// exactly (the field itself, a field inside it, or the object holding it). Never another exception
// (which would be exit 1, "internal") and never a crash.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "job.hpp"

#ifndef SMNAS_TEST_FIXTURES_DIR
#error "SMNAS_TEST_FIXTURES_DIR must name native/tests/fixtures"
#endif

using nlohmann::json;
using smnas::JobError;
using smnas::parseJob;

namespace {

json loadFixture(const std::string& name) {
  std::ifstream in(std::string(SMNAS_TEST_FIXTURES_DIR) + "/" + name);
  EXPECT_TRUE(in.good()) << name;
  return json::parse(in);
}

void collect(const json& j, const json::json_pointer& at, std::vector<json::json_pointer>& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      out.push_back(at / it.key());
      collect(it.value(), at / it.key(), out);
    }
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i) {
      out.push_back(at / i);
      collect(j[i], at / i, out);
    }
  }
}

// "/layout/backbone/stages/1" -> "layout.backbone.stages.1" (the trainer's field names)
std::string dotted(const json::json_pointer& p) {
  std::string s = p.to_string(), out;
  for (size_t i = 1; i < s.size(); ++i) out += s[i] == '/' ? '.' : s[i];
  return out;
}

// one is the other, or a dotted prefix of it
bool related(const std::string& a, const std::string& b) {
  const std::string& shorter = a.size() < b.size() ? a : b;
  const std::string& longer = a.size() < b.size() ? b : a;
  return longer.compare(0, shorter.size(), shorter) == 0 && (longer.size() == shorter.size() || longer[shorter.size()] == '.');
}

// whether a dotted field names a place in the document (or its parent object, for "is required")
bool namesPlaceIn(const json& doc, const std::string& field) {
  if (field == "<root>") return true;
  json::json_pointer p;
  std::stringstream ss(field);
  std::string part;
  while (std::getline(ss, part, '.')) p /= part;
  return doc.contains(p) || (!p.empty() && doc.contains(p.parent_pointer()));
}

const std::vector<json>& hostileValues() {
  static const std::vector<json> values = {nullptr,
                                           true,
                                           0,
                                           -1,
                                           1,
                                           2,
                                           3,
                                           7,
                                           32,
                                           33,
                                           1024,
                                           -0.5,
                                           0.5,
                                           1e300,
                                           -1e300,
                                           9.3e18,
                                           -9.3e18,
                                           std::numeric_limits<int64_t>::max(),
                                           std::numeric_limits<int64_t>::min(),
                                           std::numeric_limits<uint64_t>::max(),
                                           "",
                                           "x",
                                           "cpu",
                                           "cuda:",
                                           "cuda:0",
                                           "bn",
                                           "fp16",
                                           "../../etc/passwd",
                                           json::array(),
                                           json::array({nullptr}),
                                           json::array({1, 2}),
                                           json::object(),
                                           json::object({{"", 1}})};
  return values;
}

struct Outcome {
  int accepted = 0, rejected = 0;
};

// parse; a JobError must name `mutated` (strict) or some place of the document
void check(const json& doc, const std::string& mutated, bool strict, const std::string& what, Outcome& o) {
  try {
    parseJob(doc.dump());
    ++o.accepted;
  } catch (const JobError& e) {
    ++o.rejected;
    EXPECT_FALSE(std::string(e.what()).empty()) << what;
    if (strict)
      EXPECT_TRUE(related(e.field, mutated)) << what << ": rejected naming '" << e.field << "': " << e.what();
    else
      EXPECT_TRUE(related(e.field, mutated) || namesPlaceIn(doc, e.field)) << what << ": rejected naming '" << e.field << "': " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": " << typeid(e).name() << " instead of a JobError: " << e.what();
  }
}

void fuzzFixture(const std::string& name) {
  const json base = loadFixture(name);
  ASSERT_NO_THROW(parseJob(base.dump())) << name << " must be a valid job (regenerate it: see test/native/job-fixtures.test.ts)";
  std::vector<json::json_pointer> paths;
  collect(base, json::json_pointer(), paths);
  ASSERT_GT(paths.size(), 50u);
  Outcome o;
  for (const auto& p : paths) {
    const std::string field = dotted(p);
    for (const json& v : hostileValues()) {
      json doc = base;
      const bool typeChange = base.at(p).type() != v.type() && !(base.at(p).is_number() && v.is_number());
      doc.at(p) = v;
      // a value of another type is read where the field is read: the error names it exactly
      check(doc, field, typeChange && !base.at(p).is_null(), name + ": " + field + " = " + v.dump(), o);
    }
    json doc = base;
    json& parent = doc.at(p.parent_pointer());
    if (parent.is_object())
      parent.erase(p.back());
    else
      parent.erase(parent.begin() + static_cast<std::ptrdiff_t>(std::stoul(p.back())));
    check(doc, field, false, name + ": delete " + field, o);
    if (base.at(p).is_object()) {
      json withExtra = base;
      withExtra.at(p)["unknownField"] = json::array({1});
      check(withExtra, field, false, name + ": unknown field in " + field, o);
    }
  }
  // hostile documents as a whole
  const std::vector<std::string> documents = {
      "", "{", "[]", "null", "1", "\"job\"", "{\"schemaVersion\": 1e999}", std::string(100000, '[')};
  for (const std::string& text : documents) {
    try {
      parseJob(text);
      ADD_FAILURE() << "accepted '" << text.substr(0, 20) << "'";
    } catch (const JobError& e) {
      EXPECT_FALSE(std::string(e.what()).empty());
    } catch (const std::exception& e) {
      ADD_FAILURE() << "'" << text.substr(0, 20) << "': " << typeid(e).name() << " instead of a JobError: " << e.what();
    }
  }
  // the mutations exercise both outcomes
  std::cout << name << ": " << paths.size() << " fields, " << o.accepted + o.rejected << " mutations: " << o.accepted << " accepted, "
            << o.rejected << " rejected naming the field\n";
  EXPECT_GT(o.accepted, 50) << name;
  EXPECT_GT(o.rejected, 500) << name;
}

}  // namespace

TEST(JobFuzz, DetectionJobMutationsAreParsedOrNamed) { fuzzFixture("job-train.json"); }
TEST(JobFuzz, ExportJobMutationsAreParsedOrNamed) { fuzzFixture("job-export.json"); }
TEST(JobFuzz, ClassificationJobMutationsAreParsedOrNamed) { fuzzFixture("job-classify-train.json"); }

// Each kind is named once (job.cpp's tables): the parser, the printer and the "one of" list of the
// error agree, for every kind of every table.
TEST(JobKinds, NamesRoundTripAndUnknownOnesListTheKnown) {
  using namespace smnas;
  for (const char* n : {"basicblock", "bottleneck", "Xbottleneck", "mbblock"}) EXPECT_STREQ(blockKindName(blockKindNamed(n)), n);
  for (const char* n : {"bn", "gn", "gn+ws"}) EXPECT_STREQ(normKindName(normKindNamed(n)), n);
  EXPECT_EQ(rpnKindNamed("ga-rpn"), RpnKind::GaRpn);
  EXPECT_EQ(headKindNamed("retina"), HeadKind::Retina);
  EXPECT_THROW(headKindNamed("3fc"), std::invalid_argument);
  const json base = loadFixture("job-train.json");
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"/layout/backbone/block", "layout.backbone.block", "'Xbottleneck', 'basicblock', 'bottleneck', 'mbblock'"},
      {"/layout/rpn/kind", "layout.rpn.kind", "'ga-rpn', 'none', 'rpn'"},
      {"/layout/head/kind", "layout.head.kind", "'2fc', 'cascade', 'retina'"},
      {"/recipe/norm", "recipe.norm", "'bn', 'gn', 'gn+ws'"},
      {"/recipe/initScheme", "recipe.initScheme", "'mmdet', 'torchvision'"},
  };
  for (const auto& [pointer, field, listed] : cases) {
    json j = base;
    j.at(json::json_pointer(pointer)) = "nope";
    try {
      parseJob(j.dump());
      ADD_FAILURE() << field << ": 'nope' accepted";
    } catch (const JobError& e) {
      EXPECT_EQ(e.field, field);
      EXPECT_EQ(std::string(e.what()), "must be one of " + listed + ", got 'nope'");
    }
  }
}

// The recipe's optional init scheme and RPN min_pos_iou (toy-train sets both: the fixture is it);
// absent, they are mmdetection's.
TEST(JobRecipe, InitSchemeAndRpnMinPosIouAreReadOrDefaulted) {
  using namespace smnas;
  const json base = loadFixture("job-train.json");
  const Job given = parseJob(base.dump());
  EXPECT_EQ(given.recipe.init, InitScheme::Torchvision);
  EXPECT_EQ(given.recipe.rpnMinPosIou, std::optional<double>(0.0));
  json absent = base;
  absent["recipe"].erase("initScheme");
  absent["recipe"]["rpn"].erase("minPosIou");
  const Job defaulted = parseJob(absent.dump());
  EXPECT_EQ(defaulted.recipe.init, InitScheme::Mmdet);
  EXPECT_FALSE(defaulted.recipe.rpnMinPosIou.has_value());  // the RPN's own default (test_model)
  json bad = base;
  bad["recipe"]["rpn"]["minPosIou"] = 1.5;
  try {
    parseJob(bad.dump());
    ADD_FAILURE() << "minPosIou 1.5 accepted";
  } catch (const JobError& e) {
    EXPECT_EQ(e.field, "recipe.rpn.minPosIou");
  }
}
