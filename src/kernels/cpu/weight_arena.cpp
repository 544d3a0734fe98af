#include "kernels/cpu/weight_arena.h"

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define QUAROT_WEIGHT_ARENA_PLAIN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QUAROT_WEIGHT_ARENA_PLAIN 1
#endif
#endif
#if !defined(__linux__)
#define QUAROT_WEIGHT_ARENA_PLAIN 1
#endif

namespace quarot::weight_arena {

namespace {

constexpr size_t kPieceAlign = 64;
[[maybe_unused]] constexpr size_t kHugePage = size_t{2} << 20;
// Slab size: large enough that a small model's weights take a handful of slabs, small
// enough that the partly filled last one costs little (only touched pages count).
[[maybe_unused]] constexpr size_t kSlabBytes = size_t{32} << 20;

size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

// The first bracketed word of /sys/kernel/mm/transparent_hugepage/enabled ("always",
// "madvise", "never"), or "" where it cannot be read.
[[maybe_unused]] std::string thp_mode() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!std::getline(f, line)) return "";
  const size_t a = line.find('['), b = line.find(']');
  return a != std::string::npos && b != std::string::npos && b > a ? line.substr(a + 1, b - a - 1) : "";
}

// QUAROT_HUGE_PAGES=0 keeps 4 KiB pages (for comparisons, or where huge pages hurt).
[[maybe_unused]] bool huge_pages_wanted() {
  static const bool wanted = [] {
    const char* v = std::getenv("QUAROT_HUGE_PAGES");
    return v == nullptr || std::string(v) != "0";
  }();
  return wanted;
}

}  // namespace

struct Slab {
  char* base = nullptr;
  size_t bytes = 0;
  size_t used = 0;
  // Live pieces, plus one while the slab is the arena's current slab.
  std::atomic<int64_t> refs{1};
};

#if defined(QUAROT_WEIGHT_ARENA_PLAIN)

Piece allocate(size_t bytes) {
  void* p = std::aligned_alloc(kPieceAlign, round_up(bytes == 0 ? 1 : bytes, kPieceAlign));
  if (p == nullptr) throw std::bad_alloc();
  return {p, nullptr};
}

void release(const Piece& piece) noexcept { std::free(piece.data); }

std::string describe() { return "heap pages (aligned_alloc)"; }

#else

namespace {

std::mutex g_mu;
Slab* g_current = nullptr;
std::atomic<bool> g_advised{false};

void drop(Slab* s) noexcept {
  if (s->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    munmap(s->base, s->bytes);
    delete s;
  }
}

// A fresh slab of at least `bytes`, 2 MiB-aligned (mapped 2 MiB larger, then trimmed).
Slab* map_slab(size_t bytes) {
  const size_t size = round_up(bytes, kHugePage);
  const size_t span = size + kHugePage;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  char* p = static_cast<char*>(raw);
  char* base = reinterpret_cast<char*>(round_up(reinterpret_cast<uintptr_t>(p), kHugePage));
  if (base > p) munmap(p, static_cast<size_t>(base - p));
  char* end = base + size;
  if (p + span > end) munmap(end, static_cast<size_t>(p + span - end));
#if defined(MADV_HUGEPAGE)
  // Fails harmlessly where THP is off or unsupported: the slab keeps 4 KiB pages.
  if (huge_pages_wanted() && madvise(base, size, MADV_HUGEPAGE) == 0) g_advised.store(true, std::memory_order_relaxed);
#endif
  auto* s = new Slab;
  s->base = base;
  s->bytes = size;
  return s;
}

}  // namespace

Piece allocate(size_t bytes) {
  const size_t need = round_up(bytes == 0 ? 1 : bytes, kPieceAlign);
  std::lock_guard<std::mutex> lock(g_mu);
  if (need > kSlabBytes / 2) {
    // A large piece gets a slab of its own (never current), so it does not strand a
    // half-used one.
    Slab* s = map_slab(need);
    s->used = need;
    return {s->base, s};  // the slab's initial reference is this piece's
  }
  if (g_current == nullptr || g_current->bytes - g_current->used < need) {
    Slab* fresh = map_slab(kSlabBytes);
    if (g_current != nullptr) drop(g_current);
    g_current = fresh;
  }
  Slab* s = g_current;
  void* p = s->base + s->used;
  s->used += need;
  s->refs.fetch_add(1, std::memory_order_relaxed);
  return {p, s};
}

void release(const Piece& piece) noexcept {
  if (piece.slab == nullptr) {
    std::free(piece.data);
    return;
  }
  drop(piece.slab);
}

std::string describe() {
  const std::string mode = thp_mode();
  const std::string thp = mode.empty() ? "THP setting unreadable" : "THP " + mode;
  if (!huge_pages_wanted()) return "4 KiB pages (QUAROT_HUGE_PAGES=0)";
  if (mode == "never" || (mode.empty() && !g_advised.load())) return "4 KiB pages (" + thp + ")";
  return "2 MiB transparent huge pages (" + thp + ")";
}

#endif

}  // namespace quarot::weight_arena
