#include "kernels/cpu/cpu_features.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

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
  if (f.has_avx512_path()) EXPECT_TRUE(f.has_avx2_path());
  EXPECT_TRUE(isa_supported(detected_isa()));
  const std::string description = cpu_description();
  EXPECT_NE(description.find(f.brand), std::string::npos);
  EXPECT_NE(description.find(isa_name(detected_isa())), std::string::npos);
}

TEST(CpuFeatures, ParseIsaNames) {
  EXPECT_EQ(parse_isa("scalar", "t"), Isa::kScalar);
  EXPECT_EQ(parse_isa("avx2", "t"), Isa::kAvx2);
  EXPECT_EQ(parse_isa("avx512", "t"), Isa::kAvx512);
  EXPECT_THROW(parse_isa("sse9", "t"), Error);
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
  if (isa_supported(Isa::kAvx512)) GTEST_SKIP() << "every path is supported on this CPU";
  ScopedIsaEnv env("avx512");
  try {
    best_isa();
    FAIL() << "forcing an unsupported ISA must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("QUAROT_ISA=avx512"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace quarot
