#pragma once
// Arithmetic in the finite field GF(q), q = p^k, needed by the Paley Hadamard
// constructions (their orders q + 1 and 2(q + 1) cover 28 = 27 + 1, 52 = 2(25 + 1),
// 344 = 343 + 1, ... where q is a prime power but not a prime).
//
// An element is encoded as an integer in [0, q) whose base-p digits are the
// coefficients of a polynomial of degree < k (digit i = coefficient of x^i).
// Addition is digit-wise mod p; multiplication is polynomial multiplication
// reduced modulo a monic irreducible polynomial of degree k, found by search.
#include <cstdint>
#include <optional>
#include <vector>

namespace quarot {

struct PrimePower {
  int64_t prime = 0;
  int exponent = 0;
};

// p and k with q = p^k, or nullopt when q is not a prime power (q < 2 included).
std::optional<PrimePower> as_prime_power(int64_t q);

class GaloisField {
 public:
  // Throws Error when q is not a prime power or is too large to tabulate (> 2^20).
  explicit GaloisField(int64_t q);

  int64_t order() const { return q_; }
  int64_t characteristic() const { return p_; }
  int degree() const { return k_; }
  // Coefficients c_0..c_{k-1} of the reduction polynomial x^k + c_{k-1} x^{k-1} + ... + c_0.
  const std::vector<int64_t>& modulus() const { return modulus_; }

  int64_t add(int64_t a, int64_t b) const;
  int64_t sub(int64_t a, int64_t b) const;
  int64_t mul(int64_t a, int64_t b) const;
  int64_t pow(int64_t a, int64_t e) const;

  // The quadratic character chi(a): 0 for a = 0, +1 for nonzero squares, -1 otherwise.
  // Tabulated once from the squares of all elements.
  int quadratic_character(int64_t a) const { return chi_[a]; }

 private:
  std::vector<int64_t> digits(int64_t a) const;
  int64_t from_digits(const std::vector<int64_t>& d) const;

  int64_t q_ = 0;
  int64_t p_ = 0;
  int k_ = 0;
  std::vector<int64_t> modulus_;
  std::vector<int8_t> chi_;
};

}  // namespace quarot
