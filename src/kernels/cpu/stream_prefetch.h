#pragma once
// Software prefetch of a decode weight stream (the GEMVs over int4/int8 codes, the
// FP16/int8 lm_head): as a kernel reads each 64-byte line of the stream it requests
// the line `near_bytes` ahead into L1 (T0) and the line `far_bytes` ahead into L2 (T2);
// 0 = no request at that distance. Prefetching never changes a result, and requests
// past the end of a buffer are harmless (a prefetch does not fault).
#include <cstdint>

namespace quarot {

struct StreamPrefetch {
  int64_t near_bytes = 0;
  int64_t far_bytes = 0;
};

// What this CPU's decode streams use:
//   AMD: none. The weights live on 2 MiB pages (weight_arena.h), where Zen's hardware
//     prefetchers follow the stream, and the prefetch instructions only took issue slots:
//     on the 2-vCPU Zen 4 (2026-12-04, docs/results/2026-12-04-epyc-decode-prefetch/) the
//     int4 GEMV of a 1536 x 576 weight read 27-29 instead of 23-24 GB/s on one core and the
//     FP16 lm_head took 1.03-1.06 instead of 1.10-1.35 ms on two.
//   Other CPUs: 2 KiB into L1 and 8 KiB into L2. On the 2-vCPU Xeon with AMX (2026-12-06,
//     docs/results/2026-12-06-xeon2-decode-prefetch/; 2 KiB into L1 alone was the setting
//     before) the L2 requests took bench_weight_memory's 30 layers of SmolLM2 W4A4 decode
//     products from 2180-2396 to 1571 us, its FP16 lm_head (with weight_only_gemm's 16-lane
//     F16 row) from 2.21 to 1.32-1.60 ms, and the model's W4A4KV4 decode from 173-183 to
//     221-226 tokens/s at context 512. Without the near requests, or with the far ones at
//     16 KiB, the GEMVs were slower in a trial sweep.
const StreamPrefetch& decode_prefetch();

// The requests for the line at p (static: each ISA file gets its own copy, so no code
// compiled under one file's flags is shared with another). __builtin_prefetch (read,
// locality 3 = T0, 1 = T2) rather than _mm_prefetch: in codebook_int8_avx512vbmi.cpp
// GCC 12 emitted no instruction at all for _mm_prefetch called through this function.
static inline void prefetch_ahead(const void* p, const StreamPrefetch& d) {
  const char* c = static_cast<const char*>(p);
  if (d.near_bytes != 0) __builtin_prefetch(c + d.near_bytes, 0, 3);
  if (d.far_bytes != 0) __builtin_prefetch(c + d.far_bytes, 0, 1);
}

// Requests every 64-byte line of [p, p + bytes) into L1 (T0), for reading or, with
// `write`, for writing (the line then arrives owned). Static for the reason above.
static inline void prefetch_range(const void* p, int64_t bytes, bool write = false) {
  const char* c = static_cast<const char*>(p);
  for (int64_t b = 0; b < bytes; b += 64) {
    if (write)
      __builtin_prefetch(c + b, 1, 3);
    else
      __builtin_prefetch(c + b, 0, 3);
  }
}

}  // namespace quarot
