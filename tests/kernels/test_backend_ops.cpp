// The Backend's non-product ops (memory, embedding lookup, RMSNorm, RoPE, online
// rotation, SwiGLU, residual add) on the CPU backend, each against a naive
// double-precision reference written from the formula in backend.h.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "common/error.h"
#include "common/half.h"
#include "kernel_test_util.h"
#include "kernels/backend.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu/rope.h"

namespace quarot {
namespace {

// Every CPU backend flavour: each instruction-set path, simulated and integer.
std::vector<std::shared_ptr<const Backend>> cpu_backends() {
  std::vector<std::shared_ptr<const Backend>> out;
  for (Isa isa : test::supported_isas())
    for (bool simulate : {true, false}) out.push_back(make_cpu_backend(CpuBackendOptions{simulate, isa_name(isa)}));
  return out;
}

TEST(BackendOps, BuffersRoundTripHostData) {
  for (const auto& be : cpu_backends()) {
    const auto host = test::random_floats(1000, 1);
    const BackendBuffer buf = be->upload(host.data(), 1000);
    EXPECT_EQ(buf.size(), 1000);
    EXPECT_NE(buf.data(), host.data());  // a copy, not a view
    std::vector<float> back(1000, -7.0f);
    be->download(buf.data(), 1000, back.data());
    EXPECT_EQ(back, host);
    EXPECT_TRUE(be->alloc(0).empty());
    EXPECT_THROW(be->alloc(-1), Error);
  }
}

TEST(BackendOps, EmbedReadsTheRowsTheEncodingDefines) {
  const int64_t rows = 7, cols = 12;
  const std::vector<int32_t> tokens = {3, 0, 6, 3};
  const int64_t n = static_cast<int64_t>(tokens.size());

  // FP32 and FP16 tables hold multiples of 1/8 in [-4, 4]: exact in both widths.
  std::vector<float> values(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) values[i] = static_cast<float>((i * 37) % 65 - 32) / 8.0f;
  std::vector<uint16_t> halves(values.size());
  for (size_t i = 0; i < values.size(); ++i) halves[i] = fp32_to_fp16(values[i]);

  // Integer table: asymmetric 4-bit codes with groups of 4: w = scale[r, g] * (code - zero[r, g]).
  std::vector<uint8_t> codes(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) codes[i] = static_cast<uint8_t>((i * 5 + 3) % 16);
  std::vector<float> scales(rows * 3), zeros(rows * 3);
  for (int64_t i = 0; i < rows * 3; ++i) {
    scales[i] = 0.01f * static_cast<float>(i + 1);
    zeros[i] = static_cast<float>(i % 16);
  }
  const WeightEncoding grid = make_int_grid_weight(4, false, 4, rows, cols, codes, scales, zeros);

  for (const auto& be : cpu_backends()) {
    std::vector<float> out(n * cols);
    auto f32 = be->pack_embedding(f32_weight(values.data(), rows, cols));
    EXPECT_EQ(f32->rows, rows);
    EXPECT_EQ(f32->cols, cols);
    EXPECT_EQ(f32->row_bytes, cols * 4);
    be->embed(*f32, tokens.data(), n, out.data());
    for (int64_t t = 0; t < n; ++t)
      for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(out[t * cols + c], values[tokens[t] * cols + c]);

    auto f16 = be->pack_embedding(f16_weight(halves.data(), rows, cols));
    EXPECT_EQ(f16->row_bytes, cols * 2);
    std::fill(out.begin(), out.end(), 0.0f);
    be->embed(*f16, tokens.data(), n, out.data());
    for (int64_t t = 0; t < n; ++t)
      for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(out[t * cols + c], values[tokens[t] * cols + c]);

    auto q = be->pack_embedding(grid);
    EXPECT_EQ(q->row_bytes, cols / 2);
    be->embed(*q, tokens.data(), n, out.data());
    for (int64_t t = 0; t < n; ++t)
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t r = tokens[t], g = c / 4;
        const double want = static_cast<double>(scales[r * 3 + g]) * (codes[r * cols + c] - zeros[r * 3 + g]);
        ASSERT_NEAR(out[t * cols + c], want, 1e-6 * std::fabs(want) + 1e-12) << "row " << r << " col " << c;
      }

    const int32_t bad[] = {rows};
    EXPECT_THROW(be->embed(*q, bad, 1, out.data()), Error);
  }
}

TEST(BackendOps, RmsnormRowsMatchFormula) {
  const int64_t n = 5, dim = 67;
  const auto x = test::random_floats(n * dim, 2, -3.0, 3.0);
  const auto w = test::random_floats(dim, 3);
  const float eps = 1e-5f;
  for (const auto& be : cpu_backends()) {
    std::vector<float> out(n * dim), ones(n * dim);
    be->rmsnorm(x.data(), w.data(), n, dim, eps, out.data());
    be->rmsnorm(x.data(), nullptr, n, dim, eps, ones.data());
    for (int64_t t = 0; t < n; ++t) {
      double ms = 0.0;
      for (int64_t i = 0; i < dim; ++i) ms += static_cast<double>(x[t * dim + i]) * x[t * dim + i];
      const double inv = 1.0 / std::sqrt(ms / dim + eps);
      for (int64_t i = 0; i < dim; ++i) {
        const double want = x[t * dim + i] * inv;
        ASSERT_NEAR(ones[t * dim + i], want, 2e-6 * std::fabs(want) + 1e-7);
        ASSERT_NEAR(out[t * dim + i], want * w[i], 2e-6 * std::fabs(want * w[i]) + 1e-7);
      }
    }
    std::vector<float> in_place = x;
    be->rmsnorm(in_place.data(), w.data(), n, dim, eps, in_place.data());
    EXPECT_EQ(in_place, out);
  }
}

TEST(BackendOps, RopeRotatesPairsByPositionTimesFrequency) {
  const int64_t n = 4, heads = 3, hd = 16, pos0 = 9, half = hd / 2;
  const auto x = test::random_floats(n * heads * hd, 4);
  std::vector<float> inv_freq(half);
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = 1.0f / std::pow(10000.0f, 2.0f * i / hd);
  for (const auto& be : cpu_backends()) {
    std::vector<float> y = x;
    be->rope(y.data(), n, heads, hd, pos0, inv_freq.data());
    for (int64_t t = 0; t < n; ++t)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < half; ++i) {
          // The angle is formed in float32 (as transformers does), the rotation in double.
          const double angle = static_cast<float>(pos0 + t) * inv_freq[i];
          const int64_t base = (t * heads + h) * hd;
          const double a = x[base + i], b = x[base + i + half];
          ASSERT_NEAR(y[base + i], a * std::cos(angle) - b * std::sin(angle), 1e-5);
          ASSERT_NEAR(y[base + i + half], b * std::cos(angle) + a * std::sin(angle), 1e-5);
        }
    // Position 0 turns nothing.
    std::vector<float> z = x;
    be->rope(z.data(), 1, heads, hd, 0, inv_freq.data());
    EXPECT_TRUE(std::equal(z.begin(), z.begin() + heads * hd, x.begin()));
  }
}

// The backend keeps one forward's cos / sin table per thread and reuses it while the
// positions and frequencies fit: every call, hit or miss, must give apply_rope's
// values bit for bit, also when new frequencies arrive at the same address (another
// model) or the positions move on (decode after a prompt, a rewind).
TEST(BackendOps, RopeTableReuseGivesApplyRopeBitForBit) {
  const int64_t heads = 3, hd = 16, half = hd / 2, row = heads * hd;
  std::vector<float> inv_freq(half);
  auto set_theta = [&](float theta) {
    for (int64_t i = 0; i < half; ++i) inv_freq[i] = 1.0f / std::pow(theta, 2.0f * i / hd);
  };
  struct Call {
    int64_t pos0, n;
    float theta;
  };
  // Prompt, q then k over the same rows, decode steps, a rewind inside the table, a
  // longer prompt, another theta at the same address.
  const Call calls[] = {{0, 40, 1e4f}, {0, 40, 1e4f}, {40, 1, 1e4f}, {41, 1, 1e4f}, {10, 5, 1e4f},
                        {0, 64, 1e4f}, {3, 20, 1e4f}, {3, 20, 5e5f}, {23, 1, 5e5f}, {23, 1, 1e4f}};
  for (const auto& be : cpu_backends()) {
    for (const Call& c : calls) {
      set_theta(c.theta);
      const auto x = test::random_floats(c.n * row, 50 + c.pos0);
      std::vector<float> got = x, want = x;
      be->rope(got.data(), c.n, heads, hd, c.pos0, inv_freq.data());
      for (int64_t t = 0; t < c.n; ++t) apply_rope(want.data() + t * row, heads, hd, c.pos0 + t, inv_freq.data());
      ASSERT_EQ(got, want) << be->name() << " pos0 " << c.pos0 << " n " << c.n << " theta " << c.theta;
      if (c.pos0 > 0) {
        EXPECT_NE(got, x);  // it turned something
      }
    }
  }
}

TEST(BackendOps, RotateMatchesKroneckerProductOutOfPlaceAndInPlace) {
  OnlineRotation r;
  r.k = 3;
  r.p = 4;
  r.inner = 2;
  r.m = test::random_orthogonal(3, 5);
  const int64_t len = r.size(), rows = 6;
  const auto x = test::random_floats(rows * len, 6, -2.0, 2.0);
  const std::vector<double> hp = test::sylvester_matrix(r.p);
  std::vector<double> want(rows * len);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t a = 0; a < r.k; ++a)
      for (int64_t b = 0; b < r.p; ++b)
        for (int64_t c = 0; c < r.inner; ++c) {
          double acc = 0.0;
          for (int64_t a2 = 0; a2 < r.k; ++a2)
            for (int64_t b2 = 0; b2 < r.p; ++b2)
              acc += r.m[a * r.k + a2] * hp[b * r.p + b2] / std::sqrt(double(r.p)) *
                     x[i * len + (a2 * r.p + b2) * r.inner + c];
          want[i * len + (a * r.p + b) * r.inner + c] = acc;
        }
  for (const auto& be : cpu_backends()) {
    std::vector<float> src = x, out(rows * len);
    be->rotate(r, src.data(), rows, len, out.data());
    EXPECT_EQ(src, x);  // out of place leaves the input alone
    for (int64_t i = 0; i < rows * len; ++i) ASSERT_NEAR(out[i], want[i], 1e-5);
    be->rotate(r, src.data(), rows, len, src.data());
    EXPECT_EQ(src, out);

    // The default rotation copies rows of any length; a mismatched length is refused.
    std::vector<float> copy(rows * len);
    be->rotate(OnlineRotation{}, x.data(), rows, len, copy.data());
    EXPECT_EQ(copy, x);
    EXPECT_THROW(be->rotate(r, x.data(), rows, len - 2, copy.data()), Error);
  }
}

TEST(BackendOps, SwigluMatchesFormulaAcrossChunks) {
  const int64_t n = 10007;  // several of the backend's parallel chunks and a ragged tail
  const auto gate = test::random_floats(n, 7, -8.0, 8.0);
  const auto up = test::random_floats(n, 8, -2.0, 2.0);
  for (const auto& be : cpu_backends()) {
    std::vector<float> out(n, 0.0f);
    be->swiglu(gate.data(), up.data(), n, out.data());
    for (int64_t i = 0; i < n; ++i) {
      const double g = gate[i], want = g / (1.0 + std::exp(-g)) * up[i];
      ASSERT_NEAR(out[i], want, 1e-6 * std::fabs(want) + 1e-7) << i;
    }
    std::vector<float> aliased = gate;
    be->swiglu(aliased.data(), up.data(), n, aliased.data());
    EXPECT_EQ(aliased, out);
  }
}

TEST(BackendOps, AddIsElementwiseSum) {
  const int64_t n = 1001;
  const auto x = test::random_floats(n, 9), y = test::random_floats(n, 10);
  for (const auto& be : cpu_backends()) {
    std::vector<float> acc = x;
    be->add(acc.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(acc[i], x[i] + y[i]);
  }
}

}  // namespace
}  // namespace quarot
