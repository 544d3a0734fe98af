#pragma once
// Hadamard matrices (entries +-1, H H^T = K I) built in code, for the orders QuaRot
// needs to rotate dimensions that are not powers of two (12 * 2^7 = 1536, 28 * 2^9 =
// 14336, 344 * 2^5 = 11008, ...). Constructions:
//   Sylvester:  H_{2m} = [[H_m, H_m], [H_m, -H_m]]; for 2^m, H[i][j] = (-1)^popcount(i & j),
//               the ordering the fast Walsh-Hadamard transform uses.
//   Paley I:    q = p^k = 3 (mod 4), order q + 1, from the quadratic character of GF(q).
//   Paley II:   q = p^k = 1 (mod 4), order 2(q + 1).
//   Kronecker:  H_a (x) H_b is a Hadamard matrix of order a * b.
// Orders with no construction here (e.g. 156 = 4 * 39, 172 = 4 * 43, which need
// Williamson matrices) are reported as missing; hadamard_transform.h then uses
// the doubled order (312 = Paley I q = 311, 344 = Paley I q = 343) or a random
// orthogonal factor. See docs/hadamard.md.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace quarot {

struct HadamardMatrix {
  int64_t order = 0;
  std::vector<int8_t> entries;  // order x order, row-major, each +1 or -1
  std::string construction;     // e.g. "paley1(q=27=3^3)", "sylvester(2) x paley1(q=19)"

  int8_t at(int64_t r, int64_t c) const { return entries[r * order + c]; }
};

// The building blocks (exposed for tests). Each throws Error on an invalid argument.
HadamardMatrix sylvester_hadamard(int64_t order);      // order a power of two (1 allowed)
HadamardMatrix paley1_hadamard(int64_t q);             // q a prime power, q = 3 mod 4
HadamardMatrix paley2_hadamard(int64_t q);             // q a prime power, q = 1 mod 4
HadamardMatrix kronecker(const HadamardMatrix& a, const HadamardMatrix& b);

// A Hadamard matrix of order K built by: power of two; Paley I (K - 1 prime power);
// Paley II (K/2 - 1 prime power = 1 mod 4); K = a * b with both factors constructible
// (smallest a first, so 2 * ... before 12 * ...). nullopt when none of these apply,
// which includes every K > 2 that is not a multiple of 4 (no Hadamard exists) and
// orders above max_order (the matrix would be too large to be useful online).
std::optional<HadamardMatrix> find_hadamard(int64_t order, int64_t max_order = 4096);

// max |H H^T - K I| over all entries (0 for a true Hadamard matrix).
int64_t hadamard_defect(const HadamardMatrix& h);

}  // namespace quarot
