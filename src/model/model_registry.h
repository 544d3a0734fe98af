#pragma once
// Short names for models quarot knows how to fetch (scripts/fetch_model.sh), so
// every command accepts "smollm2-135m" as well as a path.
#include <string>
#include <vector>

namespace quarot {

// An existing file or directory is returned unchanged. A known name resolves to
// ${QUAROT_CACHE:-$HOME/.cache/quarot}/models/<name>/<file>; when that file is
// missing the Error says to run scripts/fetch_model.sh <name>. Anything else is
// an Error listing the known names.
std::string resolve_model_path(const std::string& name_or_path);

std::vector<std::string> known_model_names();
std::string quarot_cache_dir();  // ${QUAROT_CACHE:-$HOME/.cache/quarot}

}  // namespace quarot
