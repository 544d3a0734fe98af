#include "kernels/cpu/cpu_features.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/error.h"

namespace quarot {
namespace {

struct CpuidRegs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

CpuidRegs cpuid(uint32_t leaf, uint32_t subleaf = 0) {
  CpuidRegs r;
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
  return r;
}

bool bit(uint32_t reg, int index) { return ((reg >> index) & 1u) != 0; }

// xgetbv is only legal when CPUID.1:ECX.OSXSAVE is set; inline asm avoids needing
// -mxsave on this file.
uint64_t read_xcr0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

CpuFeatures detect() {
  CpuFeatures f;
  const CpuidRegs leaf0 = cpuid(0);
  const uint32_t max_leaf = leaf0.eax;
  char vendor[13] = {};
  std::memcpy(vendor + 0, &leaf0.ebx, 4);
  std::memcpy(vendor + 4, &leaf0.edx, 4);
  std::memcpy(vendor + 8, &leaf0.ecx, 4);
  f.vendor = vendor;

  if (cpuid(0x80000000u).eax >= 0x80000004u) {
    char brand[49] = {};
    for (uint32_t i = 0; i < 3; ++i) {
      const CpuidRegs r = cpuid(0x80000002u + i);
      std::memcpy(brand + 16 * i + 0, &r.eax, 4);
      std::memcpy(brand + 16 * i + 4, &r.ebx, 4);
      std::memcpy(brand + 16 * i + 8, &r.ecx, 4);
      std::memcpy(brand + 16 * i + 12, &r.edx, 4);
    }
    std::string s = brand;
    const auto first = s.find_first_not_of(' ');
    const auto last = s.find_last_not_of(' ');
    f.brand = first == std::string::npos ? std::string() : s.substr(first, last - first + 1);
  }
  if (f.brand.empty()) f.brand = f.vendor.empty() ? "unknown CPU" : f.vendor;
  if (max_leaf < 1) return f;

  const CpuidRegs leaf1 = cpuid(1);
  f.fma = bit(leaf1.ecx, 12);
  f.f16c = bit(leaf1.ecx, 29);
  const bool osxsave = bit(leaf1.ecx, 27);
  const bool avx = bit(leaf1.ecx, 28);
  if (osxsave) {
    const uint64_t xcr0 = read_xcr0();
    f.os_avx = avx && (xcr0 & 0x6) == 0x6;                 // SSE + AVX state
    f.os_avx512 = f.os_avx && (xcr0 & 0xe0) == 0xe0;       // opmask, ZMM_Hi256, Hi16_ZMM
    f.os_amx = (xcr0 & (uint64_t{3} << 17)) == (uint64_t{3} << 17);  // XTILECFG + XTILEDATA
  }
  if (max_leaf >= 7) {
    const CpuidRegs leaf7 = cpuid(7, 0);
    f.avx2 = bit(leaf7.ebx, 5);
    f.avx512f = bit(leaf7.ebx, 16);
    f.avx512dq = bit(leaf7.ebx, 17);
    f.avx512bw = bit(leaf7.ebx, 30);
    f.avx512vl = bit(leaf7.ebx, 31);
    f.avx512_vnni = bit(leaf7.ecx, 11);
    f.avx512_vbmi = bit(leaf7.ecx, 1);
    f.amx_bf16 = bit(leaf7.edx, 22);
    f.amx_tile = bit(leaf7.edx, 24);
    f.amx_int8 = bit(leaf7.edx, 25);
    if (leaf7.eax >= 1) {
      const CpuidRegs leaf7_1 = cpuid(7, 1);
      f.avx_vnni = bit(leaf7_1.eax, 4);
      f.avx512_bf16 = bit(leaf7_1.eax, 5);
    }
  }
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

const AmxPermission& amx_permission() {
  static const AmxPermission permission = [] {
    AmxPermission p;
    if (!cpu_features().has_amx_hardware()) {
      p.reason = "the CPU or OS lacks AMX-INT8 tile state";
      return p;
    }
    // Linux >= 5.16 keeps the 8 KiB tile-data state off until a process asks for it;
    // the first tile instruction without this permission dies with SIGILL.
    constexpr long kArchReqXcompPerm = 0x1023;
    constexpr long kXfeatureXtiledata = 18;
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) {
      p.reason = fmt::format("the kernel refused AMX tile permission (arch_prctl: {})", std::strerror(errno));
      return p;
    }
    p.granted = true;
    return p;
  }();
  return permission;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx512Vnni:
      return "avx512vnni";
    case Isa::kAmx:
      return "amx";
  }
  return "unknown";
}

Isa parse_isa(const std::string& text, const std::string& where) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni, Isa::kAmx}) {
    if (text == isa_name(isa)) return isa;
  }
  fail("{}: unknown instruction set '{}' (expected scalar, avx2, avx512, avx512vnni or amx)", where, text);
}

std::string isa_unsupported_reason(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::kScalar:
      return "";
    case Isa::kAvx2:
      return f.has_avx2_path() ? "" : "the CPU or OS lacks AVX2+FMA";
    case Isa::kAvx512:
      return f.has_avx512_path() ? "" : "the CPU or OS lacks AVX-512 F/BW/VL/DQ";
    case Isa::kAvx512Vnni:
      return f.has_avx512_vnni_path() ? "" : "the CPU or OS lacks AVX-512 VNNI";
    case Isa::kAmx: {
      const AmxPermission& p = amx_permission();
      return p.granted ? "" : p.reason;
    }
  }
  return "unknown instruction set";
}

bool isa_supported(Isa isa) { return isa_unsupported_reason(isa).empty(); }

Isa detected_isa() {
  // AMX is preferred only once the kernel granted tile permission; if it refused,
  // the VNNI path runs instead and cpu_description() says why.
  if (isa_supported(Isa::kAmx)) return Isa::kAmx;
  if (isa_supported(Isa::kAvx512Vnni)) return Isa::kAvx512Vnni;
  if (isa_supported(Isa::kAvx512)) return Isa::kAvx512;
  if (isa_supported(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kScalar;
}

Isa best_isa() {
  const char* forced = std::getenv("QUAROT_ISA");
  if (forced == nullptr || forced[0] == '\0') return detected_isa();
  const Isa isa = parse_isa(forced, "QUAROT_ISA");
  if (!isa_supported(isa)) {
    fail("QUAROT_ISA={}: not usable on this CPU ({}): {}; supported up to {}", forced, cpu_features().brand,
         isa_unsupported_reason(isa), isa_name(detected_isa()));
  }
  return isa;
}

std::string cpu_description() {
  const CpuFeatures& f = cpu_features();
  std::vector<std::string> flags;
  auto add = [&](bool present, const char* name, bool os_ok) {
    if (present) flags.push_back(os_ok ? std::string(name) : std::string(name) + "(no OS support)");
  };
  add(f.avx2, "avx2", f.os_avx);
  add(f.fma, "fma", f.os_avx);
  add(f.f16c, "f16c", f.os_avx);
  add(f.avx_vnni, "avx-vnni", f.os_avx);
  add(f.avx512f, "avx512f", f.os_avx512);
  add(f.avx512bw, "avx512bw", f.os_avx512);
  add(f.avx512vl, "avx512vl", f.os_avx512);
  add(f.avx512dq, "avx512dq", f.os_avx512);
  add(f.avx512_vnni, "avx512-vnni", f.os_avx512);
  add(f.avx512_vbmi, "avx512-vbmi", f.os_avx512);
  add(f.avx512_bf16, "avx512-bf16", f.os_avx512);
  add(f.amx_tile, "amx-tile", f.os_amx);
  add(f.amx_int8, "amx-int8", f.os_amx);
  add(f.amx_bf16, "amx-bf16", f.os_amx);
  std::string joined;
  for (const auto& flag : flags) joined += (joined.empty() ? "" : " ") + flag;
  if (joined.empty()) joined = "no AVX";
  std::string description = fmt::format("{} [{}] isa={}", f.brand, joined, isa_name(detected_isa()));
  if (f.has_amx_hardware() && !amx_permission().granted) description += " (amx unused: " + amx_permission().reason + ")";
  return description;
}

}  // namespace quarot
