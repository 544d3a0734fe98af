// Throwaway: one-thread CPU time of the 49152 x 576 int8 (per-row, symmetric) and F16
// lm_head GEMV, row by row (main's decode path: dot_row per row) vs rows1 (4 rows at once).
#include <time.h>
#include <cstdio>
#include <vector>
#include <algorithm>
#include "common/half.h"
#include "common/rng.h"
#include "kernels/cpu/weight_only_gemm_kernels.h"
#include "kernels/weight_encoding.h"
using namespace quarot;
using namespace quarot::weight_only_detail;
static double cpu() { timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main() {
  const int64_t R = 49152, C = 576;
  Rng rng(1);
  std::vector<uint8_t> codes(R * C);
  for (auto& c : codes) c = rng.below(256);
  WeightEncoding w8 = make_int_grid_weight(8, true, 0, R, C, codes, std::vector<float>(R, 0.01f), {});
  std::vector<uint16_t> halves(R * C);
  for (auto& h : halves) h = fp32_to_fp16(float(rng.uniform() - 0.5));
  WeightEncoding wh = f16_weight(halves.data(), R, C);
  std::vector<float> x(C), y1(R), y2(R);
  for (auto& v : x) v = float(rng.uniform() - 0.5);
  const auto& k = weight_only_kernels_avx2();
  for (WeightEncoding* w : {&w8, &wh}) {
    RowView first;
    first.f16 = w->kind == WeightKind::kF16;
    first.cols = C;
    first.data = w->row_data(0);
    if (!first.f16) { first.bits = 8; first.group_size = C; first.scales = w->scales; first.sym_zero = 128; }
    std::vector<double> a, b;
    for (int rep = 0; rep < 7; ++rep) {
      double t0 = cpu();
      for (int64_t r = 0; r < R; ++r) {
        RowView v = first; v.data = w->row_data(r); if (!first.f16) v.scales = w->scales + r;
        k.dot_row(v, x.data(), 1, &y1[r]);
      }
      double t1 = cpu();
      k.rows1(first, w->row_bytes(), R, x.data(), y2.data());
      double t2 = cpu();
      a.push_back(t1 - t0); b.push_back(t2 - t1);
    }
    std::sort(a.begin(), a.end()); std::sort(b.begin(), b.end());
    const double bytes = double(w->row_bytes()) * R;
    std::printf("%s: row by row %.2f ms (%.1f GB/s), rows1 %.2f ms (%.1f GB/s), min of 7 (CPU time, 1 thread); same bits: %s\n",
                first.f16 ? "f16 " : "int8", a[0] * 1e3, bytes / a[0] / 1e9, b[0] * 1e3, bytes / b[0] / 1e9,
                y1 == y2 ? "yes" : "NO");
  }
}
