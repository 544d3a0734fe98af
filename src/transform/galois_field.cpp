#include "transform/galois_field.h"

#include "common/error.h"

namespace quarot {

std::optional<PrimePower> as_prime_power(int64_t q) {
  if (q < 2) return std::nullopt;
  int64_t p = 0;
  for (int64_t d = 2; d * d <= q; ++d) {
    if (q % d == 0) {
      p = d;
      break;
    }
  }
  if (p == 0) return PrimePower{q, 1};  // q itself is prime
  int k = 0;
  while (q % p == 0) {
    q /= p;
    ++k;
  }
  if (q != 1) return std::nullopt;
  return PrimePower{p, k};
}

namespace {

// Polynomials over GF(p) as coefficient vectors, lowest degree first, no trailing zeros.
using Poly = std::vector<int64_t>;

void trim(Poly& a) {
  while (!a.empty() && a.back() == 0) a.pop_back();
}

int64_t mod_inverse(int64_t a, int64_t p) {
  // p is prime, so a^(p-2) is the inverse (Fermat).
  int64_t result = 1, base = a % p, e = p - 2;
  while (e > 0) {
    if (e & 1) result = result * base % p;
    base = base * base % p;
    e >>= 1;
  }
  return result;
}

// Remainder of a divided by b (b nonzero) over GF(p).
Poly poly_mod(Poly a, const Poly& b, int64_t p) {
  trim(a);
  const int64_t lead_inv = mod_inverse(b.back(), p);
  const size_t db = b.size() - 1;
  while (a.size() > db && !a.empty()) {
    const size_t shift = a.size() - 1 - db;
    const int64_t factor = a.back() * lead_inv % p;
    for (size_t i = 0; i <= db; ++i) a[shift + i] = ((a[shift + i] - factor * b[i]) % p + p) % p;
    trim(a);
  }
  return a;
}

// Monic polynomial of the given degree whose lower coefficients are the base-p digits of index.
Poly monic_from_index(int64_t index, int degree, int64_t p) {
  Poly f(degree + 1, 0);
  for (int i = 0; i < degree; ++i) {
    f[i] = index % p;
    index /= p;
  }
  f[degree] = 1;
  return f;
}

int64_t ipow(int64_t b, int e) {
  int64_t r = 1;
  while (e-- > 0) r *= b;
  return r;
}

// Irreducible iff no monic factor of degree 1..degree/2 divides it (trial division;
// the fields used here are tiny, so the search is instant).
bool is_irreducible(const Poly& f, int64_t p) {
  const int degree = static_cast<int>(f.size()) - 1;
  for (int d = 1; 2 * d <= degree; ++d) {
    const int64_t count = ipow(p, d);
    for (int64_t idx = 0; idx < count; ++idx) {
      if (poly_mod(f, monic_from_index(idx, d, p), p).empty()) return false;
    }
  }
  return true;
}

}  // namespace

GaloisField::GaloisField(int64_t q) : q_(q) {
  const auto pp = as_prime_power(q);
  if (!pp) fail("GF({}): {} is not a prime power", q, q);
  if (q > (int64_t{1} << 20)) fail("GF({}): field too large to tabulate", q);
  p_ = pp->prime;
  k_ = pp->exponent;
  if (k_ == 1) {
    modulus_ = {0};  // x - 0: elements are residues mod p, the reduction is unused
  } else {
    const int64_t count = ipow(p_, k_);
    bool found = false;
    for (int64_t idx = 0; idx < count && !found; ++idx) {
      Poly f = monic_from_index(idx, k_, p_);
      if (f[0] == 0) continue;  // divisible by x
      if (is_irreducible(f, p_)) {
        modulus_.assign(f.begin(), f.end() - 1);
        found = true;
      }
    }
    if (!found) fail("GF({}): no irreducible polynomial of degree {} over GF({})", q, k_, p_);
  }
  chi_.assign(q_, -1);
  chi_[0] = 0;
  for (int64_t a = 1; a < q_; ++a) chi_[mul(a, a)] = 1;
}

std::vector<int64_t> GaloisField::digits(int64_t a) const {
  std::vector<int64_t> d(k_);
  for (int i = 0; i < k_; ++i) {
    d[i] = a % p_;
    a /= p_;
  }
  return d;
}

int64_t GaloisField::from_digits(const std::vector<int64_t>& d) const {
  int64_t a = 0;
  for (int i = k_ - 1; i >= 0; --i) a = a * p_ + d[i];
  return a;
}

int64_t GaloisField::add(int64_t a, int64_t b) const {
  if (k_ == 1) return (a + b) % p_;
  auto da = digits(a), db = digits(b);
  for (int i = 0; i < k_; ++i) da[i] = (da[i] + db[i]) % p_;
  return from_digits(da);
}

int64_t GaloisField::sub(int64_t a, int64_t b) const {
  if (k_ == 1) return (a - b + p_) % p_;
  auto da = digits(a), db = digits(b);
  for (int i = 0; i < k_; ++i) da[i] = (da[i] - db[i] + p_) % p_;
  return from_digits(da);
}

int64_t GaloisField::mul(int64_t a, int64_t b) const {
  if (k_ == 1) return a * b % p_;
  const auto da = digits(a), db = digits(b);
  std::vector<int64_t> prod(2 * k_ - 1, 0);
  for (int i = 0; i < k_; ++i)
    for (int j = 0; j < k_; ++j) prod[i + j] = (prod[i + j] + da[i] * db[j]) % p_;
  // Reduce from the top: x^k = -(c_0 + ... + c_{k-1} x^{k-1}).
  for (int deg = 2 * k_ - 2; deg >= k_; --deg) {
    const int64_t c = prod[deg];
    if (c == 0) continue;
    prod[deg] = 0;
    for (int i = 0; i < k_; ++i) {
      prod[deg - k_ + i] = ((prod[deg - k_ + i] - c * modulus_[i]) % p_ + p_) % p_;
    }
  }
  prod.resize(k_);
  return from_digits(prod);
}

int64_t GaloisField::pow(int64_t a, int64_t e) const {
  int64_t result = 1, base = a;
  while (e > 0) {
    if (e & 1) result = mul(result, base);
    base = mul(base, base);
    e >>= 1;
  }
  return result;
}

}  // namespace quarot
