#pragma once
// Errors quarot reports to users. Every failure that bad input can cause is an
// Error whose message names the file (or flag) and the problem, so the CLI can
// print exactly one line and exit non-zero instead of crashing.
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace quarot {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

// Checks a condition that depends on input data (not a programming invariant).
#define QUAROT_CHECK(cond, ...)            \
  do {                                     \
    if (!(cond)) ::quarot::fail(__VA_ARGS__); \
  } while (0)

}  // namespace quarot
