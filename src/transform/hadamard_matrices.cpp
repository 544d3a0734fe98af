#include "transform/hadamard_matrices.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <map>

#include <fmt/format.h>

#include "common/error.h"
#include "transform/galois_field.h"

namespace quarot {

namespace {

bool is_power_of_two(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

std::string prime_power_name(int64_t q) {
  const auto pp = as_prime_power(q);
  if (pp && pp->exponent > 1) return fmt::format("{}={}^{}", q, pp->prime, pp->exponent);
  return fmt::format("{}", q);
}

// Jacobsthal matrix Q[a][b] = chi(a - b) over GF(q), elements in the field's encoding order.
std::vector<int8_t> jacobsthal(const GaloisField& field) {
  const int64_t q = field.order();
  std::vector<int8_t> jac(q * q);
  for (int64_t a = 0; a < q; ++a)
    for (int64_t b = 0; b < q; ++b) jac[a * q + b] = static_cast<int8_t>(field.quadratic_character(field.sub(a, b)));
  return jac;
}

}  // namespace

HadamardMatrix sylvester_hadamard(int64_t order) {
  if (!is_power_of_two(order)) fail("sylvester_hadamard: order {} is not a power of two", order);
  HadamardMatrix h;
  h.order = order;
  h.entries.resize(order * order);
  for (int64_t r = 0; r < order; ++r)
    for (int64_t c = 0; c < order; ++c)
      h.entries[r * order + c] = (std::popcount(static_cast<uint64_t>(r & c)) & 1) ? -1 : 1;
  h.construction = fmt::format("sylvester({})", order);
  return h;
}

// Paley I: for q = 3 (mod 4), chi(-1) = -1 so the Jacobsthal matrix Q is skew
// (Q^T = -Q), Q Q^T = q I - J and Q J = 0. With S = [[0, j^T], [-j, Q]] (S skew,
// S S^T = q I), H = I + S satisfies H H^T = I + S S^T = (q + 1) I.
HadamardMatrix paley1_hadamard(int64_t q) {
  const auto pp = as_prime_power(q);
  if (!pp || q % 4 != 3) fail("paley1_hadamard: q = {} must be a prime power = 3 mod 4", q);
  const GaloisField field(q);
  const auto jac = jacobsthal(field);
  const int64_t n = q + 1;
  HadamardMatrix h;
  h.order = n;
  h.entries.assign(n * n, 0);
  for (int64_t c = 1; c < n; ++c) h.entries[c] = 1;       // first row: j^T
  for (int64_t r = 1; r < n; ++r) h.entries[r * n] = -1;  // first column: -j
  for (int64_t a = 0; a < q; ++a)
    for (int64_t b = 0; b < q; ++b) h.entries[(a + 1) * n + (b + 1)] = jac[a * q + b];
  for (int64_t i = 0; i < n; ++i) h.entries[i * n + i] += 1;  // + I (diagonal of S is 0)
  h.construction = fmt::format("paley1(q={})", prime_power_name(q));
  return h;
}

// Paley II: for q = 1 (mod 4), Q is symmetric and C = [[0, j^T], [j, Q]] is a symmetric
// conference matrix (C C^T = q I). Replacing each 0 by [[1, -1], [-1, -1]] and each
// +-1 by +-[[1, 1], [1, -1]] gives a Hadamard matrix of order 2(q + 1).
HadamardMatrix paley2_hadamard(int64_t q) {
  const auto pp = as_prime_power(q);
  if (!pp || q % 4 != 1) fail("paley2_hadamard: q = {} must be a prime power = 1 mod 4", q);
  const GaloisField field(q);
  const auto jac = jacobsthal(field);
  const int64_t m = q + 1, n = 2 * m;
  auto conference = [&](int64_t r, int64_t c) -> int {
    if (r == 0 && c == 0) return 0;
    if (r == 0 || c == 0) return 1;
    return jac[(r - 1) * q + (c - 1)];
  };
  HadamardMatrix h;
  h.order = n;
  h.entries.resize(n * n);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t c = 0; c < m; ++c) {
      const int v = conference(r, c);
      const int block[2][2] = {{v == 0 ? 1 : v, v == 0 ? -1 : v}, {v == 0 ? -1 : v, v == 0 ? -1 : -v}};
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) h.entries[(2 * r + i) * n + (2 * c + j)] = static_cast<int8_t>(block[i][j]);
    }
  }
  h.construction = fmt::format("paley2(q={})", prime_power_name(q));
  return h;
}

HadamardMatrix kronecker(const HadamardMatrix& a, const HadamardMatrix& b) {
  HadamardMatrix h;
  h.order = a.order * b.order;
  h.entries.resize(h.order * h.order);
  for (int64_t ar = 0; ar < a.order; ++ar)
    for (int64_t ac = 0; ac < a.order; ++ac)
      for (int64_t br = 0; br < b.order; ++br)
        for (int64_t bc = 0; bc < b.order; ++bc)
          h.entries[(ar * b.order + br) * h.order + ac * b.order + bc] =
              static_cast<int8_t>(a.at(ar, ac) * b.at(br, bc));
  h.construction = a.construction + " x " + b.construction;
  return h;
}

namespace {

// Memoized search over constructions; `memo` maps order -> result (nullopt = impossible here).
std::optional<HadamardMatrix> search(int64_t order, std::map<int64_t, std::optional<HadamardMatrix>>& memo) {
  if (auto it = memo.find(order); it != memo.end()) return it->second;
  std::optional<HadamardMatrix> result;
  if (is_power_of_two(order)) {
    result = sylvester_hadamard(order);
  } else if (order % 4 == 0) {
    const int64_t q1 = order - 1, q2 = order / 2 - 1;
    if (as_prime_power(q1) && q1 % 4 == 3) {
      result = paley1_hadamard(q1);
    } else if (as_prime_power(q2) && q2 % 4 == 1) {
      result = paley2_hadamard(q2);
    } else {
      // Kronecker products: factors must themselves be 2 or multiples of 4.
      for (int64_t a = 2; a * a <= order && !result; ++a) {
        if (order % a != 0) continue;
        const int64_t b = order / a;
        if ((a != 2 && a % 4 != 0) || (b != 2 && b % 4 != 0)) continue;
        auto ha = search(a, memo);
        if (!ha) continue;
        auto hb = search(b, memo);
        if (!hb) continue;
        result = kronecker(*ha, *hb);
      }
    }
  }
  memo[order] = result;
  return result;
}

}  // namespace

std::optional<HadamardMatrix> find_hadamard(int64_t order, int64_t max_order) {
  if (order < 1 || order > max_order) return std::nullopt;
  if (order == 1) {
    HadamardMatrix h;
    h.order = 1;
    h.entries = {1};
    h.construction = "trivial(1)";
    return h;
  }
  if (order != 2 && order % 4 != 0) return std::nullopt;  // no Hadamard matrix exists
  std::map<int64_t, std::optional<HadamardMatrix>> memo;
  return search(order, memo);
}

int64_t hadamard_defect(const HadamardMatrix& h) {
  const int64_t n = h.order;
  int64_t worst = 0;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t s = r; s < n; ++s) {
      int64_t dot = 0;
      for (int64_t c = 0; c < n; ++c) dot += h.at(r, c) * h.at(s, c);
      const int64_t want = r == s ? n : 0;
      worst = std::max(worst, std::abs(dot - want));
    }
  }
  for (int8_t e : h.entries)
    if (e != 1 && e != -1) worst = std::max<int64_t>(worst, n);  // not a +-1 matrix at all
  return worst;
}

}  // namespace quarot
