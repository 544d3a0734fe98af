#include "kernels/cpu/act_quant.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "common/threads.h"
#include "kernels/cpu/act_quant_kernels.h"
#include "kernels/cpu/act_quant_mix.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/fwht.h"
#include "kernels/cpu/stream_prefetch.h"
#include "kernels/cpu/vec_ops.h"
#include "kernels/op_phases.h"

namespace quarot {
namespace act_quant_detail {
namespace {

bool all_finite_scalar(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return false;
  }
  return true;
}

float abs_max_scalar(const float* x, int64_t n) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  return amax;
}

bool finite_abs_max_scalar(const float* x, int64_t n, float* amax) {
  if (!all_finite_scalar(x, n)) return false;
  *amax = abs_max_scalar(x, n);
  return true;
}

void min_max_scalar(const float* x, int64_t n, float* lo, float* hi) {
  float l = 0.0f, h = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    l = std::min(l, x[i]);
    h = std::max(h, x[i]);
  }
  *lo = l;
  *hi = h;
}

int32_t encode_scalar(const float* x, int64_t n, float s, float add, float lo, float hi, int32_t offset,
                      uint8_t* codes) {
  int32_t sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t code = static_cast<int32_t>(std::clamp(std::nearbyint(x[i] / s) + add, lo, hi)) + offset;
    codes[i] = static_cast<uint8_t>(code);
    sum += code;
  }
  return sum;
}

}  // namespace

const ActQuantKernels& act_quant_kernels_for(Isa isa) {
  if (isa == Isa::kScalar) return act_quant_kernels_scalar();
  if (isa == Isa::kAvx2) return act_quant_kernels_avx2();
  return act_quant_kernels_avx512();
}

const ActQuantKernels& act_quant_kernels_scalar() {
  static const ActQuantKernels kernels{&all_finite_scalar, &abs_max_scalar, &finite_abs_max_scalar,
                                       &min_max_scalar,    &encode_scalar,  &Mixer<8, 8>::mix,
                                       nullptr};
  return kernels;
}

}  // namespace act_quant_detail

namespace {

using act_quant_detail::ActQuantKernels;

// The butterflies of fwht.cpp in the same order (stage by stage, u + v then u - v),
// so every element sees the same float operations; only the loop over independent
// elements is vectorized. dst = H_p src on [p, inner]; src == dst is in place.
void hadamard_axis(const float* src, float* dst, int64_t p, int64_t inner) {
  if (src != dst) std::memcpy(dst, src, p * inner * sizeof(float));
  float* x = dst;
  for (int64_t h = 1; h < p; h *= 2) {
    for (int64_t block = 0; block < p; block += 2 * h) {
      for (int64_t j = block; j < block + h; ++j) {
        float* u = x + j * inner;
        float* v = x + (j + h) * inner;
#pragma omp simd
        for (int64_t c = 0; c < inner; ++c) {
          const float a = u[c];
          const float b = v[c];
          u[c] = a + b;
          v[c] = a - b;
        }
      }
    }
  }
}

using Clock = std::chrono::steady_clock;
int64_t nanoseconds_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
}

// m as +-1 signs times one magnitude, when it is one (a normalized Hadamard matrix):
// the mixing kernels then multiply each value once (act_quant_mix.h). Null signs
// otherwise. The signs live in the calling thread's buffer, reused by its next call
// (no allocation per call on the decode path).
struct MixSigns {
  const float* signs = nullptr;
  float magnitude = 0.0f;
  bool paley12 = false;  // the signs are act_quant_mix.h's kPaley12
};

MixSigns find_mix_signs(const std::vector<float>& m) {
  if (m.empty() || !std::isnormal(m[0])) return {};
  // A decode step quantizes with the same few matrices (o_proj's, down_proj's) over and
  // over: the signs of the last ones are kept (compared by content, not by address),
  // which took ~0.2 us off each 1-row call of down_proj's 12 x 12 (checking 144 signs
  // against kPaley12 on top of deriving them).
  struct Entry {
    std::vector<float> m, signs;
    MixSigns found;
  };
  constexpr size_t kEntries = 4;
  thread_local Entry cache[kEntries];
  thread_local size_t next = 0;
  for (Entry& e : cache)
    if (e.m.size() == m.size() && std::memcmp(e.m.data(), m.data(), m.size() * sizeof(float)) == 0) return e.found;
  Entry& e = cache[next];
  next = (next + 1) % kEntries;
  e.m = m;
  e.found = {};
  const float c = std::fabs(m[0]);
  for (const float v : m)
    if (std::fabs(v) != c) return e.found;
  e.signs.resize(m.size());
  for (size_t i = 0; i < m.size(); ++i) e.signs[i] = m[i] < 0.0f ? -1.0f : 1.0f;
  bool paley12 = m.size() == 144;
  for (size_t i = 0; paley12 && i < m.size(); ++i)
    paley12 = e.signs[i] == static_cast<float>(act_quant_detail::kPaley12.s[i / 12][i % 12]);
  e.found = {e.signs.data(), c, paley12};
  return e.found;
}

// One row of apply_online_rotation (fwht.cpp), same arithmetic, reading src (left as it
// is unless it is `buffer`); `buffer` and `mixed` hold n floats. Returns the rotated
// row: `buffer`, or `mixed` when there is a mixing matrix (the Hadamard's scale is then
// applied as the mixing kernel loads each value, the same single rounding as the
// reference's separate pass). The transform's first stage reads src, so a row needs no
// copy of its own first (that pass was a fifth of down_proj's on the 2-vCPU Xeon).
const float* rotate_row(const ActQuantKernels& k, const OnlineRotation& r, const MixSigns& mix_signs,
                        const float* src, float* buffer, float* mixed) {
  const int64_t n = r.size();
  const int64_t block = r.p * r.inner;
  float hadamard_scale = 1.0f;
  const float* x = src;
  if (r.p > 1) {
    hadamard_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(r.p)));
    if (r.inner == 1)
      fwht(src, buffer, r.p, r.k);  // the contiguous transform, staged in registers
    else
      for (int64_t a = 0; a < r.k; ++a) hadamard_axis(src + a * block, buffer + a * block, r.p, r.inner);
    x = buffer;
  }
  if (r.m.empty()) {
    if (r.p > 1) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) buffer[i] *= hadamard_scale;
    }
    return buffer;
  }
  // The instruction set's kernel (act_quant_mix.h): all outputs' add chains of a few
  // columns at once in registers. The plain loop (a pass per (a, a2) over the block,
  // partial sums in memory) was ~20-50% of a down_proj input's quantization.
  if (mix_signs.paley12 && k.mix_paley12 != nullptr)
    k.mix_paley12(mix_signs.magnitude, x, block, hadamard_scale, mixed);
  else
    k.mix(r.m.data(), mix_signs.signs, mix_signs.magnitude, r.k, x, block, hadamard_scale, mixed);
  return mixed;
}

struct GroupQuant {
  float scale = 0.0f;
  int32_t offset = 0;
  int32_t code_sum = 0;
};

// fake_quant.cpp's sym_group / asym_group, producing integers: the scale and zero
// point use the very same expressions (so the same rounding, FMA contraction
// included, under the same compile flags); an all-zero group gets scale 0.
// amax: max(0, max |x|) (finite_abs_max).
GroupQuant quantize_sym(const ActQuantKernels& k, const float* x, int64_t n, float amax, int bits, float clip_ratio,
                        uint8_t* codes) {
  GroupQuant g;
  g.offset = 1 << (bits - 1);
  const float qmax = static_cast<float>((1 << (bits - 1)) - 1);
  const float qmin = -qmax - 1.0f;
  const float s = clip_ratio * amax / qmax;
  if (amax == 0.0f || s == 0.0f) {
    std::memset(codes, g.offset, n);
    g.code_sum = static_cast<int32_t>(n * g.offset);
    return g;
  }
  g.scale = s;
  g.code_sum = k.encode(x, n, s, 0.0f, qmin, qmax, g.offset, codes);
  return g;
}

GroupQuant quantize_asym(const ActQuantKernels& k, const float* x, int64_t n, int bits, float clip_ratio,
                         uint8_t* codes) {
  GroupQuant g;
  float lo = 0.0f, hi = 0.0f;
  k.min_max(x, n, &lo, &hi);
  lo *= clip_ratio;
  hi *= clip_ratio;
  const float qmax = static_cast<float>((1 << bits) - 1);
  const float s = (hi - lo) / qmax;
  if (s == 0.0f) {
    std::memset(codes, 0, n);
    return g;
  }
  g.scale = s;
  const float z = std::nearbyint(-lo / s);
  g.offset = static_cast<int32_t>(z);
  g.code_sum = k.encode(x, n, s, z, 0.0f, qmax, 0, codes);
  return g;
}

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// The prologue's row r into dst (cols floats).
void prologue_row(const ActPrologue& p, const float* x, int64_t r, int64_t cols, Isa isa, float* dst) {
  const float* src = x + r * cols;
  if (p.kind == ActPrologue::Kind::kSwiglu) {
    if (isa == Isa::kScalar)
      silu_mul(src, p.up + r * cols, cols, dst);
    else
      silu_mul_avx2(src, p.up + r * cols, cols, dst);
  } else {
    rmsnorm(src, p.norm_weight, cols, p.norm_eps, dst);
  }
}

void quantize_rows(const float* x, const ActPrologue* prologue, int64_t rows, int64_t cols,
                   const OnlineRotation* rotation, const ActQuantSpec& spec, QuantizedActivations& out, Isa isa) {
  QUAROT_CHECK(rows >= 0 && cols > 0, "quantize_activations: invalid shape [{}, {}]", rows, cols);
  QUAROT_CHECK(spec.bits >= 2 && spec.bits <= 8, "quantize_activations: bit width {} is outside 2..8", spec.bits);
  QUAROT_CHECK(std::isfinite(spec.clip_ratio) && spec.clip_ratio > 0.0f,
               "quantize_activations: clip ratio {} is not positive", spec.clip_ratio);
  QUAROT_CHECK(spec.group >= 0, "quantize_activations: negative group size {}", spec.group);
  const int64_t group = spec.group == 0 ? cols : spec.group;
  QUAROT_CHECK(cols % group == 0, "quantize_activations: group size {} does not divide the row length {}", group,
               cols);
  QUAROT_CHECK(isa_supported(isa), "quantize_activations: instruction set {} is not supported by this CPU",
               isa_name(isa));
  const OnlineRotation* rot = nullptr;
  if (rotation != nullptr && !(rotation->is_identity() && rotation->m.empty())) {
    validate_online_rotation(*rotation, cols);
    if (rotation->p > 1 || !rotation->m.empty()) rot = rotation;
  }
  QUAROT_CHECK(x != nullptr || rows == 0, "quantize_activations: null input");

  out.rows = rows;
  out.cols = cols;
  out.group = group;
  out.bits = spec.bits;
  out.symmetric = spec.symmetric;
  out.stride = round_up(cols, 64) + 64;
  out.padded_rows = round_up(std::max<int64_t>(rows, 1), 32);
  const int64_t bytes = out.padded_rows * out.stride;
  if (out.codes.size() < bytes) {
    out.codes = AlignedBytes(bytes);
    out.dirty_bytes = bytes;  // uninitialized
  }
  // Rows >= rows must read as zero; only bytes below dirty_bytes can be nonzero.
  const int64_t written = rows * out.stride;
  const int64_t clear_end = std::min(out.dirty_bytes, bytes);
  if (clear_end > written) std::memset(out.codes.data() + written, 0, clear_end - written);
  out.dirty_bytes = out.dirty_bytes > bytes ? out.dirty_bytes : written;
  const int64_t groups = cols / group;
  out.scales.resize(rows * groups);
  out.offsets.resize(rows * groups);
  out.code_sums.resize(rows * groups);

  const ActQuantKernels& k = act_quant_detail::act_quant_kernels_for(isa);
  constexpr int64_t kNoError = std::numeric_limits<int64_t>::max();
  std::atomic<int64_t> bad_row{kNoError};
  const MixSigns mix_signs = rot != nullptr ? find_mix_signs(rot->m) : MixSigns{};
  // A profiler's phases (op_phases.h): the pass's wall time, and with a prologue the
  // threads' time in it and in the whole row loop (clock reads only when profiled).
  OpPhaseTimes* const phases = installed_op_phase_times();
  const auto t_pass = phases != nullptr ? Clock::now() : Clock::time_point{};
  std::atomic<int64_t> prologue_ns{0}, loop_ns{0};
  // The next row's lines are requested while this one is mixed: o_proj's input (the
  // attention output, each row written partly by the other threads) then arrives in
  // time (its pass about a quarter shorter in profiled prefills on the 2-vCPU Xeon,
  // 2026-12-06; docs/kernels.md). With a prologue (q/k/v, gate/up, inputs the thread
  // wrote itself) the requests only cost time in the same trials, so those rows go
  // without.
  const bool prefetch_rows = prologue == nullptr && rot != nullptr && !rot->m.empty();
  parallel_region_if(rows > 1 && rows * cols >= 16384, [&] {
    // Each thread's row buffers, kept across calls (grown, never shrunk): allocating them
    // per call was ~0.1 us of a 1-row (decode) call.
    thread_local AlignedFloats buffer_keep, mixed_keep;
    if ((rot != nullptr || prologue != nullptr) && buffer_keep.size() < cols) buffer_keep = AlignedFloats(cols);
    if (rot != nullptr && !rot->m.empty() && mixed_keep.size() < cols) mixed_keep = AlignedFloats(cols);
    AlignedFloats& buffer = buffer_keep;
    AlignedFloats& mixed = mixed_keep;
    const bool timed = phases != nullptr && prologue != nullptr;
    int64_t my_prologue_ns = 0;
    const auto t_loop = timed ? Clock::now() : Clock::time_point{};
#pragma omp for schedule(static) nowait
    for (int64_t r = 0; r < rows; ++r) {
      // Without a prologue or rotation the codes come straight from x (const, shared).
      const float* row = x + r * cols;
      if (prefetch_rows && r + 1 < rows) prefetch_range(row + cols, cols * static_cast<int64_t>(sizeof(float)));
      if (prologue != nullptr) {
        const auto t0 = timed ? Clock::now() : Clock::time_point{};
        prologue_row(*prologue, x, r, cols, isa, buffer.data());
        if (timed) my_prologue_ns += nanoseconds_since(t0);
        row = buffer.data();
      }
      if (rot != nullptr) row = rotate_row(k, *rot, mix_signs, row, buffer.data(), mixed.data());
      uint8_t* codes = out.codes.data() + r * out.stride;
      bool finite = true;
      for (int64_t g = 0; g < groups; ++g) {
        const float* src = row + g * group;
        GroupQuant q;
        if (spec.symmetric) {
          float amax = 0.0f;
          finite = k.finite_abs_max(src, group, &amax);
          if (!finite) break;
          q = quantize_sym(k, src, group, amax, spec.bits, spec.clip_ratio, codes + g * group);
        } else {
          finite = k.all_finite(src, group);
          if (!finite) break;
          q = quantize_asym(k, src, group, spec.bits, spec.clip_ratio, codes + g * group);
        }
        out.scales[r * groups + g] = q.scale;
        out.offsets[r * groups + g] = q.offset;
        out.code_sums[r * groups + g] = q.code_sum;
      }
      if (!finite) {
        int64_t expected = bad_row.load();
        while (r < expected && !bad_row.compare_exchange_weak(expected, r)) {
        }
      }
      std::memset(codes + cols, 0, out.stride - cols);
    }
    if (timed) {
      prologue_ns += my_prologue_ns;
      loop_ns += nanoseconds_since(t_loop);
    }
  });
  if (phases != nullptr) {
    const double wall = static_cast<double>(nanoseconds_since(t_pass)) * 1e-9;
    const double prologue_share =
        loop_ns.load() > 0 ? static_cast<double>(prologue_ns.load()) / static_cast<double>(loop_ns.load()) : 0.0;
    phases->seconds[op_phase_index(OpPhase::kFusedPrologue)] += wall * prologue_share;
    phases->seconds[op_phase_index(OpPhase::kActivationQuantize)] += wall * (1.0 - prologue_share);
  }
  const int64_t bad = bad_row.load();
  if (bad != kNoError) {
    std::vector<float> input(x + bad * cols, x + (bad + 1) * cols);
    if (prologue != nullptr) prologue_row(*prologue, x, bad, cols, isa, input.data());
    for (int64_t c = 0; c < cols; ++c) {
      if (!std::isfinite(input[c])) {
        fail("quantize_activations: non-finite value {} in row {}, column {}", input[c], bad, c);
      }
    }
    fail("quantize_activations: row {} became non-finite in the online rotation (values too large)", bad);
  }
}

}  // namespace

void quantize_activations(const float* x, int64_t rows, int64_t cols, const OnlineRotation* rotation,
                          const ActQuantSpec& spec, QuantizedActivations& out, Isa isa) {
  quantize_rows(x, nullptr, rows, cols, rotation, spec, out, isa);
}

void quantize_activations(const float* x, const ActPrologue& prologue, int64_t rows, int64_t cols,
                          const OnlineRotation* rotation, const ActQuantSpec& spec, QuantizedActivations& out,
                          Isa isa) {
  QUAROT_CHECK(prologue.kind != ActPrologue::Kind::kSwiglu || prologue.up != nullptr || rows == 0,
               "quantize_activations: SwiGLU prologue without its up rows");
  quantize_rows(x, &prologue, rows, cols, rotation, spec, out, isa);
}

}  // namespace quarot
