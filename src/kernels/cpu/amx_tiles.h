#pragma once
// Internal, for the *_amx.cpp kernels (and the AMX peak loop of bench_int_gemm): the one
// tile configuration they use, eight tiles of 16 rows x 64 bytes (an A tile of 16 rows x 64
// u8 codes, a B tile of 16 quads x 16 columns, a C tile of 16 x 16 int32).
//
// A constant in memory: GCC dropped the stores that filled a local copy (it does not see
// ldtilecfg read them), and ldtilecfg faults on the garbage left. Callers must hold AMX
// permission (cpu_features.h: amx_permission()).
#include <immintrin.h>

#include <cstdint>

namespace quarot::amx_detail {

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

constexpr TileConfig make_tiles_16x64() {
  TileConfig c;
  for (int i = 0; i < 8; ++i) {
    c.colsb[i] = 64;
    c.rows[i] = 16;
  }
  return c;
}
alignas(64) inline constexpr TileConfig kTiles16x64 = make_tiles_16x64();

// Around a thread's run of kernel calls: loading the configuration costs about as much
// as a few tile products, so kernels do not do it per call. Compiled for AMX wherever they
// are included (a benchmark's peak loop calls them from a file built without AMX flags).
__attribute__((target("amx-tile"))) inline void configure_tiles() { _tile_loadconfig(&kTiles16x64); }
__attribute__((target("amx-tile"))) inline void release_tiles() { _tile_release(); }

}  // namespace quarot::amx_detail
