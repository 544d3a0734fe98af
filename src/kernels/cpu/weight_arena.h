#pragma once
// Memory for packed weights: 2 MiB-aligned slabs the kernel is asked to back with
// transparent huge pages (madvise MADV_HUGEPAGE), carved into 64-byte-aligned pieces.
//
// Why: decode streams every weight once per token. On 4 KiB pages SmolLM2's ~80 MB
// span ~20,000 pages, far beyond what the second-level TLB maps (Zen 4: 3072 entries,
// 12 MiB), so every page costs a table walk, and a 576 x 576 int4 product (166 KB,
// 41 pages) is over before the hardware prefetchers, which stop at each 4 KiB page,
// have ramped up. On 2 MiB pages the walks disappear. (Debian's default THP mode,
// "madvise", gives huge pages only to memory that asks, and malloc does not.)
//
// Pieces are never reused: a slab is unmapped when its last piece is released, so
// memory packed once and kept (a model's weights) costs at most one partly filled
// slab. Thread-safe. Where huge pages are unavailable (THP "never", not Linux) the
// slabs are plain pages; under AddressSanitizer pieces come from aligned_alloc so
// the sanitizer still sees their bounds.
#include <cstddef>
#include <cstdint>
#include <string>

namespace quarot::weight_arena {

struct Slab;

struct Piece {
  void* data = nullptr;
  Slab* slab = nullptr;  // null: data came from aligned_alloc
};

// bytes > 0, rounded up to 64. Throws std::bad_alloc when the memory cannot be mapped.
Piece allocate(size_t bytes);
// Gives the piece back; unmaps its slab when it was the slab's last live piece.
void release(const Piece& piece) noexcept;

// Whether slabs ask for huge pages here, and what the system's THP setting is, for
// reports: e.g. "2 MiB transparent huge pages (THP madvise)", "4 KiB pages (THP never)".
std::string describe();

}  // namespace quarot::weight_arena
