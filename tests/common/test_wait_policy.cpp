#include "common/wait_policy.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace quarot {
namespace {

TEST(WaitPolicy, SpinsOnlyOnAnIdleMultiprocessorMachine) {
  EXPECT_EQ(choose_wait_policy(0.0, 2), WaitPolicy::kSpin);
  EXPECT_EQ(choose_wait_policy(0.49, 16), WaitPolicy::kSpin);
  EXPECT_EQ(choose_wait_policy(0.5, 2), WaitPolicy::kPassive);
  EXPECT_EQ(choose_wait_policy(7.0, 2), WaitPolicy::kPassive);
  EXPECT_EQ(choose_wait_policy(0.0, 1), WaitPolicy::kPassive);  // nothing to spin for
}

TEST(WaitPolicy, SpinningIsBoundedAndSleepingIsPassive) {
  const EnvSetting spin = wait_policy_env(WaitPolicy::kSpin);
  EXPECT_EQ(std::string(spin.name), "GOMP_SPINCOUNT");  // not OMP_WAIT_POLICY=ACTIVE: that never sleeps
  EXPECT_GT(std::stol(spin.value), 0);
  const EnvSetting passive = wait_policy_env(WaitPolicy::kPassive);
  EXPECT_EQ(std::string(passive.name), "OMP_WAIT_POLICY");
  EXPECT_EQ(std::string(passive.value), "PASSIVE");
}

TEST(WaitPolicy, LoadAverageIsReadOnLinux) {
  const std::optional<double> load = read_load_average();
  ASSERT_TRUE(load.has_value());
  EXPECT_GE(*load, 0.0);
}

TEST(WaitPolicy, DescriptionNamesTheEnvironmentSetting) {
  const char* saved_policy = std::getenv("OMP_WAIT_POLICY");
  const std::string policy = saved_policy ? saved_policy : "";
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  unsetenv("GOMP_SPINCOUNT");
  EXPECT_EQ(describe_wait_policy(), "passive (OMP_WAIT_POLICY=PASSIVE)");
  unsetenv("OMP_WAIT_POLICY");
  setenv("GOMP_SPINCOUNT", "300000", 1);
  EXPECT_EQ(describe_wait_policy(), "GOMP_SPINCOUNT=300000");
  unsetenv("GOMP_SPINCOUNT");
  EXPECT_EQ(describe_wait_policy(), "OpenMP default (spin, then sleep)");
  if (saved_policy) setenv("OMP_WAIT_POLICY", policy.c_str(), 1);
}

// Which settings make libgomp's threads spin: what decides how small a decode product
// still splits (int_gemm, kv_attention).
TEST(WaitPolicy, SpinningIsReadFromTheEnvironment) {
  EXPECT_TRUE(openmp_spins_with(nullptr, nullptr));  // libgomp's default spins
  EXPECT_TRUE(openmp_spins_with("300000", nullptr));
  EXPECT_TRUE(openmp_spins_with("300k", nullptr));
  EXPECT_TRUE(openmp_spins_with("infinite", nullptr));
  EXPECT_FALSE(openmp_spins_with("3000", nullptr));
  EXPECT_FALSE(openmp_spins_with("0", nullptr));
  EXPECT_TRUE(openmp_spins_with(nullptr, "ACTIVE"));
  EXPECT_FALSE(openmp_spins_with(nullptr, "PASSIVE"));
  // GOMP_SPINCOUNT, when set, decides how long libgomp spins whatever the policy.
  EXPECT_TRUE(openmp_spins_with("300000", "PASSIVE"));
  EXPECT_FALSE(openmp_spins_with("1000", "ACTIVE"));
}

}  // namespace
}  // namespace quarot
