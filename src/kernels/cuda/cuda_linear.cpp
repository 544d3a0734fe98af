#include "kernels/cuda/cuda_linear.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/error.h"
#include "common/half.h"
#include "kernels/cpu/fwht.h"
#include "kernels/cuda/cuda_act_quant.cuh"
#include "kernels/cuda/cuda_elementwise.cuh"
#include "kernels/cuda/cuda_rotate.cuh"
#include "kernels/cuda/int_gemm.cuh"

namespace quarot::cuda {
namespace {

constexpr int64_t kKAlign = 128;       // int_gemm's K step
constexpr int64_t kMaxIntK = kIntGemmMaxK;  // int_gemm's largest K
constexpr float kHalfMax = 65504.0f;

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Weights the integer kernels take: one scale per output channel, symmetric codes,
// an even number of outputs (int_gemm writes column pairs).
bool integer_eligible(const WeightEncoding& w) {
  return w.kind == WeightKind::kIntGrid && w.symmetric && (w.group == 0 || w.group == w.cols) && w.bits >= 2 &&
         w.bits <= 8 && w.rows % 2 == 0 && w.cols <= kMaxIntK;
}

// Signed codes q = code - 2^(bits-1) in int_gemm's layout: int4 (bits <= 4) two per
// byte, low nibble first, or int8; columns past K are q = 0.
void pack_integer(CudaPackedWeight& p, const WeightEncoding& w) {
  const int64_t rows = w.rows, cols = w.cols, kp = round_up(cols, kKAlign);
  const bool nibbles = w.bits <= 4;
  const int64_t row_bytes = nibbles ? kp / 2 : kp;
  const int zero = 1 << (w.bits - 1);
  std::vector<uint8_t> codes(static_cast<size_t>(rows * row_bytes), 0);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* src = w.row_data(r);
    uint8_t* dst = codes.data() + r * row_bytes;
    for (int64_t c = 0; c < cols; ++c) {
      const int code = nibbles ? (src[c / 2] >> ((c & 1) * 4)) & 0x0f : src[c];
      const int q = code - zero;
      if (nibbles)
        dst[c / 2] |= static_cast<uint8_t>((q & 0xF) << ((c & 1) * 4));
      else
        dst[c] = static_cast<uint8_t>(static_cast<int8_t>(q));
    }
  }
  p.integer = true;
  p.bits = w.bits;
  p.padded_cols = kp;
  p.codes = DeviceMemory(codes.size(), "integer weight codes");
  p.codes.upload(codes.data(), codes.size());
  p.scales = DeviceMemory(rows * sizeof(float), "weight scales");
  p.scales.upload(w.scales, rows * sizeof(float));
}

// FP16 [rows, cols] of the encoding's exact FP32 values, rounded to nearest even.
DeviceMemory half_of(const WeightEncoding& w) {
  const size_t count = static_cast<size_t>(w.rows * w.cols);
  DeviceMemory d(count * sizeof(uint16_t), "an FP16 weight");
  if (w.kind == WeightKind::kF16) {
    // Rows are contiguous (stride = cols), the stored halves are used as they are.
    d.upload(w.data, count * sizeof(uint16_t));
    return d;
  }
  std::vector<float> f;
  const float* values = nullptr;
  if (w.kind == WeightKind::kF32) {
    values = static_cast<const float*>(w.data);
  } else {
    f = w.dequantize();
    values = f.data();
  }
  std::vector<uint16_t> h(count);
  for (size_t i = 0; i < count; ++i) {
    if (!(std::fabs(values[i]) <= kHalfMax))
      fail("cuda backend: weight value {} at [{}, {}] is outside the FP16 range of the GPU's FP path", values[i],
           static_cast<int64_t>(i) / w.cols, static_cast<int64_t>(i) % w.cols);
    h[i] = fp32_to_fp16(values[i]);
  }
  d.upload(h.data(), count * sizeof(uint16_t));
  return d;
}

}  // namespace

std::unique_ptr<PackedWeight> pack_cuda_weight(CudaContext& ctx, const WeightEncoding& weight, bool simulate) {
  (void)ctx;
  QUAROT_CHECK(weight.rows > 0 && weight.cols > 0, "cuda backend: empty weight [{}, {}]", weight.rows, weight.cols);
  auto p = std::make_unique<CudaPackedWeight>();
  p->out_features = weight.rows;
  p->in_features = weight.cols;
  if (!simulate && integer_eligible(weight)) {
    pack_integer(*p, weight);
    p->source = weight;  // for the FP16 copy, should a product need one
    p->bytes = weight.stored_bytes();
  } else {
    p->half = half_of(weight);
    p->half_ready = true;
    p->bytes = weight.rows * weight.cols * 2;
  }
  return p;
}

RotationArgs DeviceRotations::get(CudaContext& ctx, const OnlineRotation* r, int64_t row_length) {
  RotationArgs a;
  if (r == nullptr || (r->is_identity() && r->m.empty())) return a;
  validate_online_rotation(*r, row_length);
  a.k = static_cast<int>(r->k);
  a.p = static_cast<int>(r->p);
  a.inner = static_cast<int>(r->inner);
  a.hadamard_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(r->p)));
  if (r->m.empty()) return a;
  Entry& e = entries_[r];
  const size_t bytes = r->m.size() * sizeof(float);
  if (e.k != r->k || e.p != r->p || e.inner != r->inner || e.m != r->m) {
    if (e.device.bytes() != bytes) {
      e.device = DeviceMemory(bytes, "a rotation matrix");
      bump_device_memory_epoch();
    }
    // Stream-ordered: products queued before still read the previous matrix.
    check(cudaMemcpyAsync(e.device.get(), r->m.data(), bytes, cudaMemcpyHostToDevice, ctx.stream),
          "uploading a rotation matrix");
    ++uploads_;
    e.k = r->k;
    e.p = r->p;
    e.inner = r->inner;
    e.m = r->m;
  }
  a.m = e.device.as<float>();
  return a;
}

void CudaLinear::ensure_half(CudaContext& ctx, CudaPackedWeight& w) {
  if (w.half_ready) return;
  (void)ctx;
  w.half = half_of(w.source);
  w.half_ready = true;
  bump_device_memory_epoch();
}

void CudaLinear::run(CudaContext& ctx, DeviceRotations& rotations, const LinearOp& op, const float* x, int64_t n,
                     float* y, uint64_t writes) {
  auto* w = const_cast<CudaPackedWeight*>(dynamic_cast<const CudaPackedWeight*>(op.weight));
  QUAROT_CHECK(w != nullptr, "cuda backend: linear() got a weight packed by another backend");
  QUAROT_CHECK(n >= 0, "cuda backend: negative row count {}", n);
  const int64_t in = w->in_features, out = w->out_features;
  const RotationArgs rot = rotations.get(ctx, op.input_rotation, in);
  if (n == 0) return;
  QUAROT_CHECK(n < (int64_t{1} << 31), "cuda backend: {} rows are too many for one product", n);
  const ActQuantSpec& act = op.act;
  const bool quantize = act.enabled();
  if (quantize) {
    QUAROT_CHECK(std::isfinite(act.clip_ratio) && act.clip_ratio > 0.0f,
                 "cuda backend: activation clip ratio {} is not positive", act.clip_ratio);
    QUAROT_CHECK(act.group >= 0 && (act.group == 0 || in % act.group == 0),
                 "cuda backend: activation group {} does not divide the row length {}", act.group, in);
    QUAROT_CHECK(act.bits >= (act.symmetric ? 2 : 1), "cuda backend: {} activation bits are too few ({})", act.bits,
                 act.symmetric ? "symmetric" : "asymmetric");
  }

  Prepared want;
  want.valid = true;
  want.x = x;
  want.n = n;
  want.in = in;
  want.k = rot.k;
  want.p = rot.p;
  want.inner = rot.inner;
  want.m = rot.m;
  want.clip = act.clip_ratio;
  want.writes = writes;
  want.rotation_uploads = rotations.uploads();
  // The output is written after the input was read: the next product may reuse the
  // prepared input only if y does not overlap x.
  const auto overlaps = [&](int64_t out) {
    const auto xb = reinterpret_cast<uintptr_t>(x), yb = reinterpret_cast<uintptr_t>(y);
    return yb < xb + static_cast<uintptr_t>(n * in) * sizeof(float) &&
           xb < yb + static_cast<uintptr_t>(n * out) * sizeof(float);
  };

  if (w->integer && quantize && act.bits <= 8 && act.symmetric && (act.group == 0 || act.group == in)) {
    const bool w4 = w->bits <= 4, a4 = act.bits <= 4;
    const IntGemmKind kind = w4 ? (a4 ? IntGemmKind::W4A4 : IntGemmKind::W4A8) : IntGemmKind::W8A8;
    const int64_t kp = w->padded_cols;
    // Prefill-sized products read one byte per code in the even/odd layout (int_gemm.cuh).
    const IntGemmActLayout layout = int_gemm_preferred_layout(kind, n, out, kp);
    const int storage_bits = kind == IntGemmKind::W4A4 && layout == IntGemmActLayout::Standard ? 4 : 8;
    auto* qa = static_cast<uint8_t*>(act_codes_.get(ctx, n * kp * storage_bits / 8, "quantized activations"));
    auto* sa = static_cast<float*>(act_scales_.get(ctx, n * sizeof(float), "activation scales"));
    want.integer = true;
    want.padded = kp;
    want.bits = act.bits;
    want.storage_bits = storage_bits;
    want.layout = layout;
    want.buffer = qa;
    if (!(prepared_ == want)) {
      prepared_.valid = false;
      check(quantize_rows_int(rot, x, n, in, kp, act.bits, storage_bits, layout, act.clip_ratio, qa, sa,
                              ctx.error_flag, ctx.stream),
            "quantizing activations");
      prepared_ = want;
    }
    if (overlaps(out)) prepared_.valid = false;
    // The epilogue stores column pairs as float2: an output not 8-byte aligned goes
    // through scratch.
    const bool aligned = reinterpret_cast<uintptr_t>(y) % 8 == 0;
    float* dst = aligned ? y : static_cast<float*>(out_.get(ctx, n * out * sizeof(float), "linear output"));
    IntGemmArgs args;
    args.kind = kind;
    args.m = n;
    args.n = out;
    args.k = kp;
    args.qa = qa;
    args.act_layout = layout;
    args.qb = w->codes.get();
    args.sa = sa;
    args.sb = w->scales.as<float>();
    args.y_f32 = dst;
    args.bias = op.bias;
    // pack() uploaded the weights synchronously, so no kernel in the stream writes them:
    // decode products may start streaming them while the previous kernel finishes.
    args.weights_constant = true;
    check(int_gemm(args, ctx.stream), "integer GEMM");
    if (!aligned)
      check(cudaMemcpyAsync(y, dst, n * out * sizeof(float), cudaMemcpyDeviceToDevice, ctx.stream),
            "copying the linear output");
    return;
  }

  // FP16 path: rotate, quantize-dequantize (simulated), round to FP16, cuBLAS.
  ensure_half(ctx, *w);
  auto* xh = static_cast<__half*>(act_half_.get(ctx, n * in * sizeof(__half), "FP16 activations"));
  want.bits = quantize ? act.bits : 0;
  want.group = quantize ? static_cast<int>(act.group) : 0;
  want.symmetric = quantize ? act.symmetric : true;
  if (!quantize) want.clip = 0.0f;
  want.buffer = xh;
  if (!(prepared_ == want)) {
    prepared_.valid = false;
    check(fake_quant_rows_f16(rot, x, n, in, quantize ? act.bits : 0, act.clip_ratio, act.group, act.symmetric, xh,
                              ctx.stream),
          "preparing FP16 activations");
    prepared_ = want;
  }
  if (overlaps(out)) prepared_.valid = false;
  const float alpha = 1.0f, beta = 0.0f;
  // Row-major y[n, out] = x[n, in] W[out, in]^T is column-major y^T = W^T(col-major W) x^T.
  check(cublasGemmEx(ctx.cublas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(out), static_cast<int>(n),
                     static_cast<int>(in), &alpha, w->half.get(), CUDA_R_16F, static_cast<int>(in), xh, CUDA_R_16F,
                     static_cast<int>(in), &beta, y, CUDA_R_32F, static_cast<int>(out), CUBLAS_COMPUTE_32F,
                     CUBLAS_GEMM_DEFAULT),
        "cuBLAS GEMM");
  if (op.bias != nullptr) check(add_bias_rows(y, op.bias, n, out, ctx.stream), "adding the bias");
}

}  // namespace quarot::cuda
