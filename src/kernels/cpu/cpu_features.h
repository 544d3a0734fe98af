#pragma once
// Which SIMD instruction sets this CPU *and* this OS support, detected at run time
// with cpuid/xgetbv. One binary carries a scalar, an AVX2 and an AVX-512 path for
// every hot kernel (files *_avx2.cpp / *_avx512.cpp / *_avx512vnni.cpp / *_amx.cpp get
// their ISA flags from CMake); best_isa() picks the path, and
// QUAROT_ISA=scalar|avx2|avx512|avx512vnni|amx forces one, e.g. to compare paths or
// to reproduce a bug seen on another machine.
// The paths are ordered: each one implies the ones before it (an AMX CPU has
// AVX-512 VNNI, which implies AVX-512, ...). FP32 kernels have no VNNI/AMX variant
// and run their AVX-512 code on those paths; integer kernels (int_gemm.h) use
// vpdpbusd on kAvx512Vnni and AMX-INT8 tiles on kAmx.
#include <string>

namespace quarot {

enum class Isa { kScalar, kAvx2, kAvx512, kAvx512Vnni, kAmx };

struct CpuFeatures {
  std::string vendor;  // "GenuineIntel", "AuthenticAMD", ...
  std::string brand;   // e.g. "AMD EPYC 7B13 64-Core Processor"
  // Instruction-set bits from cpuid (what the silicon offers).
  bool fma = false;
  bool f16c = false;
  bool avx2 = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512_vnni = false;
  bool avx512_vbmi = false;  // vpermb / vpmultishiftqb (Ice Lake, Zen 4): the CLAQ int8 GEMV's byte tables
  bool avx512_bf16 = false;
  bool avx_vnni = false;  // VEX-encoded VNNI (Alder Lake and later)
  bool amx_tile = false;
  bool amx_int8 = false;
  bool amx_bf16 = false;
  // Register state the OS saves on context switch (XCR0); without it the
  // instructions fault even when cpuid advertises them.
  bool os_avx = false;     // XMM + YMM state
  bool os_avx512 = false;  // opmask + ZMM state
  bool os_amx = false;     // tile config + tile data state (Linux also needs arch_prctl permission)

  bool has_avx2_path() const { return avx2 && fma && os_avx; }
  bool has_avx512_path() const {
    return has_avx2_path() && avx512f && avx512bw && avx512vl && avx512dq && os_avx512;
  }
  bool has_avx512_vnni_path() const { return has_avx512_path() && avx512_vnni; }
  // Not a path of its own: kernels that need VBMI on top of VNNI (codebook_int8.h) check it.
  bool has_avx512_vbmi_vnni() const { return has_avx512_vnni_path() && avx512_vbmi; }
  // The silicon and XCR0 side of AMX; Linux also wants a per-process permission
  // request (amx_permission()) before the first tile instruction.
  bool has_amx_hardware() const { return has_avx512_vnni_path() && amx_tile && amx_int8 && os_amx; }
};

// Detected once, on first use.
const CpuFeatures& cpu_features();

// Asks Linux once (arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA) for permission to
// use AMX tile data in this process. granted is false on CPUs without AMX or when
// the kernel refuses; reason then says why in one phrase.
struct AmxPermission {
  bool granted = false;
  std::string reason;
};
const AmxPermission& amx_permission();

const char* isa_name(Isa isa);
// Parses "scalar" | "avx2" | "avx512" | "avx512vnni" | "amx"; throws quarot::Error
// naming `where` otherwise.
Isa parse_isa(const std::string& text, const std::string& where);
// True when this CPU and OS can run the path (for kAmx: and the permission was granted).
bool isa_supported(Isa isa);
// Why isa_supported(isa) is false, e.g. "the CPU lacks avx512_vnni"; empty when supported.
std::string isa_unsupported_reason(Isa isa);
// The widest path this CPU supports, ignoring QUAROT_ISA.
Isa detected_isa();
// detected_isa(), unless QUAROT_ISA forces a path; throws quarot::Error when the
// forced path is unknown or not supported here. Reads the environment on every call.
Isa best_isa();

// One line for `quarot bench` / `quarot inspect`: brand string, the relevant flags
// (a trailing "(no OS support)" where XCR0 disables them), the chosen path and, when
// the CPU has AMX but may not use it, why.
std::string cpu_description();

}  // namespace quarot
