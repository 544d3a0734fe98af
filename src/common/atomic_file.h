#pragma once
// Writes an output file atomically: the content goes to "<path>.tmp.<pid>" and is
// renamed over <path> only after it was fully written and flushed, so a crash or an
// error never leaves a half-written model or result behind.
#include <functional>
#include <ostream>
#include <string>

namespace quarot {

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write);

// Checks, before a long job starts, that its output can be written at `path`: the path
// names no folder, its folder exists and is a folder, and a file can be created there
// (the temporary file write_file_atomic would use is created and removed again).
// Throws Error with one line naming the path and the problem.
void check_output_writable(const std::string& path);

}  // namespace quarot
