#include "kernels/cpu/stream_prefetch.h"

#include "kernels/cpu/cpu_features.h"

namespace quarot {

const StreamPrefetch& decode_prefetch() {
  static const StreamPrefetch p =
      cpu_features().vendor == "AuthenticAMD" ? StreamPrefetch{} : StreamPrefetch{2048, 8192};
  return p;
}

}  // namespace quarot
