#include "kernels/cpu/cpu_features.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace quarot {
namespace {

// Sets QUAROT_ISA for one scope and restores the previous value.
class ScopedIsaEnv {
 public:
  explicit ScopedIsaEnv(const char* value) {
    if (const char* old = std::getenv("QUAROT_ISA")) old_ = old;
    setenv("QUAROT_ISA", value, 1);
  }
  ~ScopedIsaEnv() {
    if (old_) {
      setenv("QUAROT_ISA", old_->c_str(), 1);
    } else {
      unsetenv("QUAROT_ISA");
    }
  }

 private:
  std::optional<std::string> old_;
};

TEST(CpuFeatures, PathsAreNestedAndDescribed) {
  const CpuFeatures& f = cpu_features();
  EXPECT_TRUE(isa_supported(Isa::kScalar));
  if (f.has_avx512_path()) {
    EXPECT_TRUE(f.has_avx2_path());
  }
  EXPECT_TRUE(isa_supported(detected_isa()));
  const std::string description = cpu_description();
  EXPECT_NE(description.find(f.brand), std::string::npos);
  EXPECT_NE(description.find(isa_name(detected_isa())), std::string::npos);
}

TEST(CpuFeatures, ParseIsaNames) {
  EXPECT_EQ(parse_isa("scalar", "t"), Isa::kScalar);
  EXPECT_EQ(parse_isa("avx2", "t"), Isa::kAvx2);
  EXPECT_EQ(parse_isa("avx512", "t"), Isa::kAvx512);
  EXPECT_EQ(parse_isa("avx512vnni", "t"), Isa::kAvx512Vnni);
  EXPECT_EQ(parse_isa("amx", "t"), Isa::kAmx);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni, Isa::kAmx}) {
    EXPECT_EQ(parse_isa(isa_name(isa), "t"), isa);
  }
  EXPECT_THROW(parse_isa("sse9", "t"), Error);
}

TEST(CpuFeatures, PathsImplyTheOnesBefore) {
  const std::vector<Isa> order = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni, Isa::kAmx};
  for (size_t i = 1; i < order.size(); ++i) {
    if (isa_supported(order[i])) {
      EXPECT_TRUE(isa_supported(order[i - 1])) << isa_name(order[i]);
    }
  }
  for (Isa isa : order) {
    EXPECT_EQ(isa_supported(isa), isa_unsupported_reason(isa).empty()) << isa_name(isa);
    if (isa_supported(isa)) {
      EXPECT_LE(static_cast<int>(isa), static_cast<int>(detected_isa()));
    }
  }
}

TEST(CpuFeatures, AmxPermissionIsConsistent) {
  const AmxPermission& p = amx_permission();
  EXPECT_EQ(p.granted, p.reason.empty()) << p.reason;
  if (!cpu_features().has_amx_hardware()) {
    EXPECT_FALSE(p.granted);
  }
  EXPECT_EQ(isa_supported(Isa::kAmx), p.granted);
  if (cpu_features().has_amx_hardware() && !p.granted) {
    EXPECT_NE(cpu_description().find("amx unused"), std::string::npos) << cpu_description();
  }
}

TEST(CpuFeatures, ForcedIsaIsHonored) {
  {
    ScopedIsaEnv env("scalar");
    EXPECT_EQ(best_isa(), Isa::kScalar);
  }
  {
    ScopedIsaEnv env("");
    EXPECT_EQ(best_isa(), detected_isa());
  }
}

TEST(CpuFeatures, ForcedIsaUnknownThrows) {
  ScopedIsaEnv env("neon");
  EXPECT_THROW(best_isa(), Error);
}

TEST(CpuFeatures, ForcedUnsupportedIsaThrows) {
  if (isa_supported(Isa::kAmx)) GTEST_SKIP() << "every path is supported on this CPU";
  // The widest path this CPU lacks.
  Isa missing = Isa::kAmx;
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni, Isa::kAmx}) {
    if (!isa_supported(isa)) {
      missing = isa;
      break;
    }
  }
  ScopedIsaEnv env(isa_name(missing));
  try {
    best_isa();
    FAIL() << "forcing an unsupported ISA must throw";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(std::string("QUAROT_ISA=") + isa_name(missing)), std::string::npos) << what;
    EXPECT_NE(what.find(isa_unsupported_reason(missing)), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace quarot
