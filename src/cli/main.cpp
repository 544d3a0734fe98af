// quarot: command-line front end. Prints one error line and exits non-zero on bad
// input; results go to stdout (human or --json), progress to stderr.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <new>
#include <optional>

#include "cli/commands.h"
#include "cli/numeric_option.h"
#include "common/error.h"
#include "common/progress.h"
#include "common/threads.h"
#include "common/wait_policy.h"
#include "kernels/cpu/cpu_backend.h"
#ifdef QUAROT_HAVE_CUDA
#include "kernels/cuda/cuda_backend.h"
#endif

namespace quarot::cli {
GlobalOptions& global_options() {
  static GlobalOptions g;
  return g;
}

// Rejects a --device this build cannot serve before any work starts.
void check_device_option() {
  const GlobalOptions& g = global_options();
  if (g.device != "cuda") return;
  if (!g.isa.empty()) fail("--isa picks a CPU instruction set; it does not apply to --device cuda");
#ifndef QUAROT_HAVE_CUDA
  fail("this build has no CUDA backend (configure with -DQUAROT_CUDA=ON to use --device cuda)");
#endif
}

std::shared_ptr<const Backend> cli_backend() {
  const GlobalOptions& g = global_options();
  check_device_option();
#ifdef QUAROT_HAVE_CUDA
  if (g.device == "cuda") return make_cuda_backend(CudaBackendOptions{0, g.simulate});
#endif
  return make_cpu_backend(
      CpuBackendOptions{.simulate = g.simulate, .isa = g.isa, .int8_attention = !g.fp32_attention});
}
}  // namespace quarot::cli

namespace {
// The OpenMP runtime reads its wait settings before main(), so the process re-executes
// itself once with the chosen setting in place (common/wait_policy.h says which and why);
// an explicit user setting always wins.
void choose_openmp_waiting(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return;
  const long processors = sysconf(_SC_NPROCESSORS_ONLN);
  const std::optional<double> load = quarot::read_load_average();
  const quarot::WaitPolicy policy =
      load ? quarot::choose_wait_policy(*load, static_cast<int>(processors)) : quarot::WaitPolicy::kPassive;
  const quarot::EnvSetting env = quarot::wait_policy_env(policy);
  setenv(env.name, env.value, 1);
  execv("/proc/self/exe", argv);  // returns only on failure: carry on with the defaults
}
}  // namespace

int main(int argc, char** argv) {
  choose_openmp_waiting(argv);
  using namespace quarot::cli;
  CLI::App app{"quarot: 4-bit Llama-family inference and quantization (QuaRot, GPTQ)"};
  app.set_version_flag("--version", "quarot 0.1.0");
  app.require_subcommand(1);
  auto& g = global_options();
  add_number(&app, "-t,--threads", g.threads, "worker threads (0 = all cores, or $QUAROT_THREADS)",
             quarot::kThreadsRange);
  app.add_flag("-q,--quiet", g.quiet, "no progress bars on stderr");
  app.add_flag("--simulate", g.simulate,
               "run quantized models with the simulated arithmetic (quantize-dequantize; FP32 on the CPU, FP16 on CUDA) "
               "instead of integer kernels");
  app.add_option("--device", g.device, "where the model runs: cpu (default) or cuda (an sm_90 GPU; builds with CUDA)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--isa", g.isa, "force an instruction-set path (scalar, avx2, avx512, ...; default: best, or $QUAROT_ISA)");
  app.add_flag("--fp32-attention", g.fp32_attention,
               "CPU integer path: multiply attention over a 4-bit KV cache (prefill and decode) in FP32 instead of int8 "
               "(int8 where the CPU has AVX-512 VNNI; or $QUAROT_INT8_ATTENTION=0)");
  // Global options may also follow the subcommand: `quarot ppl --simulate -m ...`.
  app.fallthrough();
  Action action;
  add_ppl(app, action);
  add_generate(app, action);
  add_inspect(app, action);
  add_bench(app, action);
  add_quantize(app, action);
  add_eval(app, action);
  // CLI11 reports a mistyped subcommand only as "A subcommand is required"; name it.
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-t" || a == "--threads" || a == "--isa" || a == "--device") {
      ++i;
      continue;
    }
    if (a.empty() || a[0] == '-') continue;
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) known = known || sub->check_name(a);
    if (!known) {
      std::fprintf(stderr, "quarot: error: unknown subcommand '%s' (see quarot --help)\n", a.c_str());
      return 2;
    }
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    const quarot::ThreadSetting threads = quarot::set_num_threads(g.threads, /*cap_at_processors=*/true);
    if (threads.capped())
      std::fprintf(stderr, "quarot: %d threads requested, this machine has %d processors: using %d\n",
                   threads.requested, threads.processors, threads.used);
    if (g.quiet) quarot::ProgressBar::set_enabled(false);
    check_device_option();
    return action ? action() : 0;
  } catch (const quarot::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "quarot: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "quarot: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quarot: error: %s\n", e.what());
    return 1;
  }
}
