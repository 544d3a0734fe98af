#include "kernels/cpu/weight_arena.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/cpu/aligned_buffer.h"

namespace quarot {
namespace {

bool sanitized_build() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#endif
#endif
  return false;
}

// "THPeligible" of the mapping holding p in /proc/self/smaps: -1 when not found.
int thp_eligible(const void* p) {
  std::ifstream f("/proc/self/smaps");
  std::string line;
  const auto a = reinterpret_cast<uintptr_t>(p);
  bool inside = false;
  while (std::getline(f, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (line.find('-') != std::string::npos && (head >> std::hex >> lo >> dash >> hi) && dash == '-' && hi > lo) {
      inside = a >= lo && a < hi;
      continue;
    }
    if (inside && line.rfind("THPeligible:", 0) == 0) return std::stoi(line.substr(12));
  }
  return -1;
}

std::string thp_mode() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  std::getline(f, line);
  const size_t a = line.find('['), b = line.find(']');
  return a != std::string::npos && b != std::string::npos ? line.substr(a + 1, b - a - 1) : "";
}

TEST(WeightArena, PiecesAreAlignedDisjointAndSurviveReleasesInAnyOrder) {
  std::mt19937 rng(7);
  std::vector<weight_arena::Piece> pieces;
  std::vector<size_t> sizes;
  // Small and medium pieces (several slabs' worth) and two that get slabs of their own.
  for (int i = 0; i < 400; ++i) sizes.push_back(1 + rng() % (300 << 10));
  sizes.push_back(size_t{20} << 20);
  sizes.push_back(size_t{17} << 20);
  for (size_t i = 0; i < sizes.size(); ++i) {
    pieces.push_back(weight_arena::allocate(sizes[i]));
    ASSERT_NE(pieces.back().data, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(pieces.back().data) % 64, 0u) << "piece " << i;
    std::memset(pieces.back().data, static_cast<int>(i & 0xff), sizes[i]);
  }
  // Every piece still holds its own byte: none overlaps another.
  for (size_t i = 0; i < pieces.size(); ++i) {
    const auto* b = static_cast<const unsigned char*>(pieces[i].data);
    ASSERT_EQ(b[0], i & 0xff) << "piece " << i;
    ASSERT_EQ(b[sizes[i] - 1], i & 0xff) << "piece " << i;
  }
  std::vector<size_t> order(pieces.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  // Release half, allocate more (the current slab keeps serving), then the rest.
  for (size_t i = 0; i < order.size() / 2; ++i) weight_arena::release(pieces[order[i]]);
  std::vector<weight_arena::Piece> more;
  for (int i = 0; i < 50; ++i) {
    more.push_back(weight_arena::allocate(4096));
    std::memset(more.back().data, 0xab, 4096);
  }
  for (size_t i = order.size() / 2; i < order.size(); ++i) {
    const auto* b = static_cast<const unsigned char*>(pieces[order[i]].data);
    EXPECT_EQ(b[sizes[order[i]] / 2], order[i] & 0xff);
    weight_arena::release(pieces[order[i]]);
  }
  for (const auto& p : more) weight_arena::release(p);
}

TEST(WeightArena, AlignedArrayWithWeightPlacementOwnsItsPiece) {
  std::vector<AlignedFloats> arrays;
  for (int i = 0; i < 64; ++i) {
    arrays.emplace_back(1000 + 37 * i, Placement::kWeights);
    float* d = arrays.back().data();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(d) % 64, 0u);
    for (int64_t j = 0; j < arrays.back().size(); ++j) d[j] = static_cast<float>(i);
  }
  AlignedFloats moved = std::move(arrays[3]);
  arrays.erase(arrays.begin(), arrays.begin() + 10);
  EXPECT_EQ(moved.data()[moved.size() - 1], 3.0f);
  for (const auto& a : arrays) EXPECT_EQ(a.data()[0], a.data()[a.size() - 1]);
}

TEST(WeightArena, SlabsAskForHugePagesWhereTheSystemAllowsIt) {
  const std::string describe = weight_arena::describe();
  EXPECT_FALSE(describe.empty());
  const weight_arena::Piece p = weight_arena::allocate(size_t{1} << 20);
  const std::string mode = thp_mode();
  const char* env = std::getenv("QUAROT_HUGE_PAGES");
  const bool opted_out = env != nullptr && std::string(env) == "0";
  if (sanitized_build()) {
    // Pieces come from aligned_alloc so the sanitizer sees their bounds.
    EXPECT_EQ(p.slab, nullptr);
    EXPECT_NE(describe.find("heap"), std::string::npos) << describe;
  } else if ((mode == "madvise" || mode == "always") && !opted_out) {
    EXPECT_NE(p.slab, nullptr);
    EXPECT_EQ(thp_eligible(p.data), 1) << "the slab holding the piece is not eligible for huge pages";
    EXPECT_NE(describe.find("2 MiB"), std::string::npos) << describe;
  } else {
    // THP off (or opted out): plain pages, and the report says so.
    EXPECT_NE(describe.find("4 KiB"), std::string::npos) << describe << " (THP " << mode << ")";
  }
  weight_arena::release(p);
}

}  // namespace
}  // namespace quarot
