// Fork/join and cross-core costs of small OpenMP regions (issue 8, the AMX prefill gap).
// Build: g++ -O3 -march=x86-64-v3 -fopenmp tools/device/omp_probe.cpp -o omp_probe; run with
// GOMP_SPINCOUNT=300000 OMP_NUM_THREADS=N; prints medians and 90th percentiles (us).
#include <omp.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <algorithm>
__attribute__((noinline)) static void norm_row(const float* __restrict x, const float* __restrict w, int n, float* __restrict y) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < n; ++i) s += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(s / n + 1e-5f);
#pragma omp simd
  for (int i = 0; i < n; ++i) y[i] = x[i] * inv * w[i];
}
static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
int main(int argc, char** argv) {
  const int reps = 2000;
  const int rows = 512, cols = 576;
  std::vector<float> x(rows * cols, 1.0f), y(rows * cols), w(cols, 1.0f);
  static volatile int sink[64 * 16];
  float* xp = x.data(); float* yp = y.data(); const float* wp = w.data();
  std::vector<double> t_empty, t_norm_same, t_norm_tiles, t_tiles;
  for (int r = 0; r < reps; ++r) {
    double t0 = now();
#pragma omp parallel
    { sink[omp_get_thread_num() * 16] += 1; }
    double t1 = now();
    // write x by row partition (same as the norm's)
#pragma omp parallel for schedule(static)
    for (int i = 0; i < rows; ++i) for (int c = 0; c < cols; ++c) x[i * cols + c] += 1e-6f;
    double t2 = now();
#pragma omp parallel for schedule(static)
    for (int i = 0; i < rows; ++i) norm_row(xp + i * cols, wp, cols, yp + i * cols);
    double t3 = now();
    // write x by (128-row x 64-col) tiles, like the GEMM epilogue
#pragma omp parallel for collapse(2) schedule(static)
    for (int rb = 0; rb < rows / 128; ++rb) for (int cb = 0; cb < cols / 64; ++cb)
      for (int i = rb * 128; i < rb * 128 + 128; ++i) for (int c = cb * 64; c < cb * 64 + 64; ++c) x[i*cols+c] += 1e-6f;
    double t4 = now();
#pragma omp parallel for schedule(static)
    for (int i = 0; i < rows; ++i) norm_row(xp + i * cols, wp, cols, yp + i * cols);
    double t5 = now();
    if (r >= 100) { t_empty.push_back(t1-t0); t_norm_same.push_back(t3-t2); t_tiles.push_back(t4-t3); t_norm_tiles.push_back(t5-t4); }
  }
  auto med = [](std::vector<double> v) { std::sort(v.begin(), v.end()); return v[v.size()/2]*1e6; };
  auto p90 = [](std::vector<double> v) { std::sort(v.begin(), v.end()); return v[v.size()*9/10]*1e6; };
  std::printf("{\"threads\": %d, \"empty_region_us\": [%.2f, %.2f], \"norm_after_row_writes_us\": [%.2f, %.2f], \"tile_writes_us\": [%.2f, %.2f], \"norm_after_tile_writes_us\": [%.2f, %.2f]}\n",
    omp_get_max_threads(), med(t_empty), p90(t_empty), med(t_norm_same), p90(t_norm_same), med(t_tiles), p90(t_tiles), med(t_norm_tiles), p90(t_norm_tiles));
  return y[5] == 12345.0f;
}
