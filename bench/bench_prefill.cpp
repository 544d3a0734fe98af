// Prefill of one model, timed in wall and process CPU time: the CPU time is what a
// kernel change moves even on a machine shared with other jobs (wall time there
// mostly measures the scheduler). Prints one JSON object.
// Build: cmake --build <dir> --target bench_prefill
// Run:   <dir>/bench/bench_prefill MODEL [prompt_tokens=512] [repeats=5] [threads]
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/rng.h"
#include "common/threads.h"
#include "eval/model_session.h"
#include "kernels/cpu/cpu_backend.h"

namespace {

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_prefill MODEL [prompt_tokens] [repeats] [threads]\n");
    return 2;
  }
  const std::string model = argv[1];
  const int64_t n = argc > 2 ? std::atoll(argv[2]) : 512;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 5;
  if (argc > 4) quarot::set_num_threads(std::atoi(argv[4]));
  quarot::ModelSession s = quarot::open_model(model, quarot::make_cpu_backend(quarot::CpuBackendOptions{}));
  const quarot::LlamaConfig& c = s.model->config();
  quarot::Rng rng(1234);
  std::vector<int32_t> prompt(n);
  for (auto& t : prompt) t = static_cast<int32_t>(rng.below(c.vocab_size));
  quarot::KvCache cache = s.model->make_cache(n);
  std::vector<float> logits;
  s.model->forward(prompt.data(), std::min<int64_t>(16, n), cache, logits, false);  // warm-up
  cache.clear();
  std::vector<double> wall, cpu;
  for (int r = 0; r < repeats; ++r) {
    const double w0 = wall_seconds(), c0 = cpu_seconds();
    s.model->forward(prompt.data(), n, cache, logits, false);
    cpu.push_back(cpu_seconds() - c0);
    wall.push_back(wall_seconds() - w0);
    cache.clear();
  }
  auto list = [](const std::vector<double>& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
    return out + "]";
  };
  std::vector<double> sc = cpu, sw = wall;
  std::sort(sc.begin(), sc.end());
  std::sort(sw.begin(), sw.end());
  std::printf(
      "{\"model\": \"%s\", \"tokens\": %lld, \"threads\": %d, \"wall_s\": %s, \"cpu_s\": %s, "
      "\"median_wall_tok_s\": %.1f, \"median_cpu_s\": %.4f, \"min_cpu_s\": %.4f}\n",
      model.c_str(), static_cast<long long>(n), quarot::num_threads(), list(wall).c_str(), list(cpu).c_str(),
      n / sw[sw.size() / 2], sc[sc.size() / 2], sc[0]);
  return 0;
}
