#pragma once
// Writes an output file atomically: the content goes to "<path>.tmp.<pid>" and is
// renamed over <path> only after it was fully written and flushed, so a crash or an
// error never leaves a half-written model or result behind.
#include <functional>
#include <ostream>
#include <string>

namespace quarot {

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);

}  // namespace quarot
