#include <gtest/gtest.h>

#include <numeric>

#include "common/error.h"
#include "quant/pipeline/calibration_data.h"

namespace quarot {
namespace {

std::vector<int32_t> counting_ids(int64_t n) {
  std::vector<int32_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  return ids;
}

TEST(CalibrationWindows, AreContiguousSlicesOfTheText) {
  const auto ids = counting_ids(10000);
  const auto windows = sample_calibration_windows(ids, 6, 128, 42);
  ASSERT_EQ(windows.size(), 6u);
  for (const auto& w : windows) {
    ASSERT_EQ(w.size(), 128u);
    EXPECT_GE(w.front(), 0);
    EXPECT_LE(w.back(), 9999);
    for (size_t t = 1; t < w.size(); ++t) EXPECT_EQ(w[t], w[0] + static_cast<int32_t>(t));
  }
}

TEST(CalibrationWindows, DeterministicPerSeed) {
  const auto ids = counting_ids(10000);
  EXPECT_EQ(sample_calibration_windows(ids, 5, 64, 7), sample_calibration_windows(ids, 5, 64, 7));
  EXPECT_NE(sample_calibration_windows(ids, 5, 64, 7), sample_calibration_windows(ids, 5, 64, 8));
}

TEST(CalibrationWindows, FewerWindowsWhenTheTextIsShort) {
  const auto ids = counting_ids(1000);
  EXPECT_EQ(sample_calibration_windows(ids, 10, 300, 1).size(), 3u);  // 1000 / 300
  EXPECT_EQ(sample_calibration_windows(ids, 1, 1000, 1).front(), ids);  // exactly one window fits
}

TEST(CalibrationWindows, TooShortTextIsAnError) {
  const auto ids = counting_ids(100);
  EXPECT_THROW(sample_calibration_windows(ids, 1, 128, 0), Error);
  EXPECT_THROW(sample_calibration_windows({}, 1, 1, 0), Error);
  EXPECT_THROW(sample_calibration_windows(ids, 0, 10, 0), Error);
  EXPECT_THROW(sample_calibration_windows(ids, 1, 0, 0), Error);
}

TEST(CalibrationFile, RefusesEvaluationSplitsUnlessForced) {
  EXPECT_THROW(check_calibration_file("/data/wikitext-2-raw-v1.test.txt", false), Error);
  EXPECT_THROW(check_calibration_file("C4_TEST.json", false), Error);
  EXPECT_NO_THROW(check_calibration_file("/data/wikitext-2-raw-v1.test.txt", true));
  EXPECT_NO_THROW(check_calibration_file("/data/wikitext-2-v1.valid.tokenized.txt", false));
  // Only the file name counts, not the directories above it.
  EXPECT_NO_THROW(check_calibration_file("/tmp/test-run/train.txt", false));
  try {
    check_calibration_file("/data/x.test.txt", false);
    FAIL() << "a test-split file name was accepted";
  } catch (const Error& e) {
    // The reason, in the library's words (the CLI names its override flag itself).
    EXPECT_NE(std::string(e.what()).find("evaluation (test) split"), std::string::npos);
    EXPECT_EQ(std::string(e.what()).find("--"), std::string::npos);
  }
}

}  // namespace
}  // namespace quarot
