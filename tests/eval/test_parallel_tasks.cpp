// Tasks and windows evaluated one per thread (eval/task_runner.h) must give exactly
// the results of the serial loop, whose ops spread each forward over the threads:
// the same doubles, not merely close ones. The models are made large enough in
// context that the ops' own parallel regions do split work (attention beyond 256
// positions, decode steps of the quantized KV cache), and come in both arithmetics:
// the FP32 reference and the integer kernels with a 4-bit KV cache (W4A4KV4).
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "byte_tokenizer.h"
#include "common/error.h"
#include "common/threads.h"
#include "eval/hellaswag.h"
#include "eval/perplexity.h"
#include "eval/task_runner.h"
#include "kernels/cpu/cpu_backend.h"
#include "quant/rtn.h"

namespace quarot {
namespace {

// Sets the OpenMP thread count for one test and restores it.
class ThreadCount {
 public:
  explicit ThreadCount(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ThreadCount() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

// The CPU backend with a chosen concurrent_forwards(), recording which host threads
// call linear().
class ProbeBackend final : public Backend {
 public:
  ProbeBackend(std::shared_ptr<const Backend> inner, bool concurrent) : inner_(std::move(inner)), concurrent_(concurrent) {}
  std::set<std::thread::id> linear_callers() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return callers_;
  }

  std::string name() const override { return "probe " + inner_->name(); }
  bool host_memory() const override { return inner_->host_memory(); }
  bool concurrent_forwards() const override { return concurrent_; }
  BackendBuffer alloc(int64_t n) const override { return inner_->alloc(n); }
  void upload(const float* host, int64_t n, float* dst) const override { inner_->upload(host, n, dst); }
  void download(const float* src, int64_t n, float* host) const override { inner_->download(src, n, host); }
  using Backend::pack;
  using Backend::upload;
  std::unique_ptr<PackedWeight> pack(const WeightEncoding& w) const override { return inner_->pack(w); }
  std::unique_ptr<PackedEmbedding> pack_embedding(const WeightEncoding& t) const override {
    return inner_->pack_embedding(t);
  }
  void linear(const LinearOp& op, const float* x, int64_t n, float* y) const override {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      callers_.insert(std::this_thread::get_id());
    }
    inner_->linear(op, x, n, y);
  }
  void embed(const PackedEmbedding& t, const int32_t* tokens, int64_t n, float* out) const override {
    inner_->embed(t, tokens, n, out);
  }
  void rmsnorm(const float* x, const float* w, int64_t n, int64_t dim, float eps, float* out) const override {
    inner_->rmsnorm(x, w, n, dim, eps, out);
  }
  void rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t pos0, const float* f) const override {
    inner_->rope(x, n, n_heads, head_dim, pos0, f);
  }
  void rotate(const OnlineRotation& r, const float* x, int64_t rows, int64_t len, float* out) const override {
    inner_->rotate(r, x, rows, len, out);
  }
  void swiglu(const float* gate, const float* up, int64_t n, float* out) const override {
    inner_->swiglu(gate, up, n, out);
  }
  void add(float* x, const float* y, int64_t n) const override { inner_->add(x, y, n); }
  std::unique_ptr<KvStorage> make_kv_storage(const KvCacheSpec& spec) const override {
    return inner_->make_kv_storage(spec);
  }
  void attention(const float* q, int64_t n, int64_t pos0, const KvStorage& kv, int64_t layer,
                 const AttentionShape& shape, float scale, float* out) const override {
    inner_->attention(q, n, pos0, kv, layer, shape, scale, out);
  }

 private:
  std::shared_ptr<const Backend> inner_;
  bool concurrent_;
  mutable std::mutex mutex_;
  mutable std::set<std::thread::id> callers_;
};

LlamaConfig long_context_config() {
  LlamaConfig c = tiny_test_config();
  c.intermediate = 128;  // a power of two, for the online Hadamard on down_proj's input
  c.max_context = 1024;
  return c;
}

// FP32 reference arithmetic, no quantization.
std::shared_ptr<const LlamaModel> fp32_model(std::shared_ptr<const Backend> backend) {
  const LlamaConfig c = long_context_config();
  return std::make_shared<LlamaModel>(make_synthetic_model(c, 31), RuntimeRecipe{}, std::move(backend));
}

// The integer kernels: 4-bit RTN weights, 4-bit activations, 4-bit asymmetric KV
// cache, online Hadamards on Q/K and down_proj's input.
std::shared_ptr<const LlamaModel> w4a4kv4_model(std::shared_ptr<const Backend> backend) {
  const LlamaConfig c = long_context_config();
  ModelWeights w = make_synthetic_model(c, 37);
  WeightEncodings enc;
  WeightQuantSpec spec;
  spec.clip_search = false;
  for (int64_t li = 0; li < c.n_layers; ++li)
    for (const LayerLinear& l : kLayerLinears) {
      enc[layer_linear_name(li, l)] = quantize_rtn(w.layers[li].*l.weight, spec).encode();
      w.layers[li].*l.weight = Tensor();
    }
  RuntimeRecipe r;
  r.act.bits = 4;
  r.k_cache.bits = r.v_cache.bits = 4;
  r.qk_rotation = OnlineRotation{1, c.head_dim, 1, {}};
  r.down_proj_input = OnlineRotation{1, c.intermediate, 1, {}};
  return std::make_shared<LlamaModel>(w, r, std::move(backend), enc);
}

std::shared_ptr<const Backend> integer_backend() { return make_cpu_backend(CpuBackendOptions{}); }
std::shared_ptr<const Backend> fp32_backend() {
  return make_cpu_backend(CpuBackendOptions{.simulate = true, .isa = {}});
}

std::vector<int32_t> token_stream(int64_t n, int64_t vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  uint32_t s = 12345;
  for (auto& id : ids) {
    s = s * 1664525u + 1013904223u;
    id = static_cast<int32_t>((s >> 8) % static_cast<uint32_t>(vocab));
  }
  return ids;
}

// Tasks of a few hundred bytes of context, so attention over the cache goes parallel.
std::vector<HellaswagTask> synthetic_tasks(int n) {
  std::vector<HellaswagTask> tasks(static_cast<size_t>(n));
  const char* words[] = {"the", "cat", "sat", "on", "a", "mat", "while", "dogs", "ran", "far", "away", "home"};
  uint32_t s = 777;
  auto word = [&] {
    s = s * 1103515245u + 12345u;
    return std::string(words[(s >> 16) % 12]);
  };
  for (int t = 0; t < n; ++t) {
    HellaswagTask& task = tasks[static_cast<size_t>(t)];
    const int context_words = 40 + 12 * (t % 5);  // ~170 to ~400 bytes
    for (int i = 0; i < context_words; ++i) task.context += (i ? " " : "") + word();
    task.label = t % 4;
    for (int e = 0; e < 4; ++e)
      for (int i = 0; i < 2 + (e + t) % 5; ++i) task.endings[e] += (i ? " " : "") + word();
  }
  return tasks;
}

void expect_same(const PerplexityResult& a, const PerplexityResult& b, const std::string& what) {
  EXPECT_EQ(a.ppl, b.ppl) << what;
  EXPECT_EQ(a.nll, b.nll) << what;
  EXPECT_EQ(a.scored_tokens, b.scored_tokens) << what;
  ASSERT_EQ(a.chunk_nll.size(), b.chunk_nll.size()) << what;
  for (size_t i = 0; i < a.chunk_nll.size(); ++i) EXPECT_EQ(a.chunk_nll[i], b.chunk_nll[i]) << what << " window " << i;
}

TEST(TaskRunner, ChoosesTheModeFromOptionThreadsUnitsAndBackend) {
  const auto cpu = integer_backend();
  const ProbeBackend serial_only(cpu, false);
  ThreadCount two(2);
  EXPECT_TRUE(TaskRunner(TaskParallelism::kAuto, *cpu, 8).concurrent());
  EXPECT_EQ(TaskRunner(TaskParallelism::kAuto, *cpu, 8).workers(), 2);
  EXPECT_EQ(TaskRunner(TaskParallelism::kOn, *cpu, 1).workers(), 1);  // never more workers than units
  EXPECT_FALSE(TaskRunner(TaskParallelism::kAuto, *cpu, 1).concurrent());
  EXPECT_FALSE(TaskRunner(TaskParallelism::kOff, *cpu, 8).concurrent());
  EXPECT_EQ(TaskRunner(TaskParallelism::kOff, *cpu, 8).workers(), 1);
  EXPECT_FALSE(TaskRunner(TaskParallelism::kAuto, serial_only, 8).concurrent());
  EXPECT_FALSE(TaskRunner(TaskParallelism::kOn, serial_only, 8).concurrent());
  {
    ThreadCount one(1);
    EXPECT_FALSE(TaskRunner(TaskParallelism::kAuto, *cpu, 8).concurrent());
    EXPECT_TRUE(TaskRunner(TaskParallelism::kOn, *cpu, 8).concurrent());
  }
  EXPECT_EQ(parse_task_parallelism("auto"), TaskParallelism::kAuto);
  EXPECT_EQ(parse_task_parallelism("on"), TaskParallelism::kOn);
  EXPECT_EQ(parse_task_parallelism("off"), TaskParallelism::kOff);
  EXPECT_THROW(parse_task_parallelism("yes"), Error);
}

// Each worker's ops run on its own thread, even with nested parallelism enabled;
// every unit runs once, done() calls never overlap, and the caller's thread count
// is unchanged afterwards.
TEST(TaskRunner, WorkersRunEveryUnitOnceWithSingleThreadedOps) {
  const auto cpu = integer_backend();
  ThreadCount two(2);
  const int saved_levels = omp_get_max_active_levels();
  omp_set_max_active_levels(4);
  const TaskRunner runner(TaskParallelism::kAuto, *cpu, 40);
  ASSERT_TRUE(runner.concurrent());
  std::vector<std::atomic<int>> ran(40), finished(40);
  std::atomic<int> wide_team{0}, wide_setting{0}, in_done{0}, overlaps{0}, bad_worker{0};
  runner.run(
      [&](int64_t u, int worker) {
        if (worker < 0 || worker >= runner.workers()) ++bad_worker;
        int team = 0;
#pragma omp parallel
        {
#pragma omp single
          team = omp_get_num_threads();
        }
        if (team != 1) ++wide_team;
        if (num_threads() != 1) ++wide_setting;
        ++ran[u];
      },
      [&](int64_t u) {
        if (in_done.fetch_add(1) != 0) ++overlaps;
        ++finished[u];
        std::this_thread::yield();
        in_done.fetch_sub(1);
      });
  omp_set_max_active_levels(saved_levels);
  for (int u = 0; u < 40; ++u) {
    EXPECT_EQ(ran[u].load(), 1) << u;
    EXPECT_EQ(finished[u].load(), 1) << u;
  }
  EXPECT_EQ(wide_team.load(), 0);
  EXPECT_EQ(wide_setting.load(), 0);
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(bad_worker.load(), 0);
  EXPECT_EQ(num_threads(), 2);
}

// The serial loop stops at the first failing unit; the concurrent one reports that
// same unit's error, whichever thread failed first.
TEST(TaskRunner, RethrowsTheLowestFailingUnitsError) {
  const auto cpu = integer_backend();
  ThreadCount two(2);
  for (const TaskParallelism mode : {TaskParallelism::kOff, TaskParallelism::kOn}) {
    const TaskRunner runner(mode, *cpu, 30);
    std::atomic<int> done{0};
    try {
      runner.run(
          [](int64_t u, int) {
            if (u == 7 || u == 11 || u == 29) fail("unit {} failed", u);
          },
          [&](int64_t) { ++done; });
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_STREQ(e.what(), "unit 7 failed");
    }
    EXPECT_GE(done.load(), 7);   // units 0..6 always complete
    EXPECT_LE(done.load(), 27);  // 7, 11 and 29 never do
  }
}

TEST(ParallelTasks, PerplexityWindowsGiveTheSerialResultExactly) {
  for (const bool integer : {false, true}) {
    const auto model = integer ? w4a4kv4_model(integer_backend()) : fp32_model(fp32_backend());
    const std::string kind = integer ? "W4A4KV4" : "FP32";
    const std::vector<int32_t> ids = token_stream(5 * 300 + 17, model->config().vocab_size);
    for (const bool llamacpp : {false, true}) {
      PerplexityOptions opt;
      opt.progress = false;
      opt.seqlen = 300;  // attention beyond 256 positions splits over the threads
      opt.protocol = llamacpp ? PplProtocol::kLlamaCpp : PplProtocol::kGptq;
      opt.batch = 8;     // llama.cpp: forwards of 8 rows, the decode path of the KV cache
      const std::string what = kind + (llamacpp ? " llama.cpp" : " gptq");
      PerplexityResult one_thread, serial, concurrent;
      {
        ThreadCount one(1);
        opt.parallel_tasks = TaskParallelism::kOff;
        one_thread = evaluate_perplexity(*model, ids, opt);
      }
      {
        ThreadCount two(2);
        opt.parallel_tasks = TaskParallelism::kOff;
        serial = evaluate_perplexity(*model, ids, opt);
        opt.parallel_tasks = TaskParallelism::kAuto;
        concurrent = evaluate_perplexity(*model, ids, opt);
      }
      EXPECT_FALSE(serial.concurrent);
      EXPECT_TRUE(concurrent.concurrent);
      EXPECT_EQ(concurrent.chunks, 5) << what;
      EXPECT_TRUE(std::isfinite(concurrent.ppl) && concurrent.ppl > 1.0) << what;
      expect_same(serial, concurrent, what + ": serial on 2 threads vs concurrent");
      expect_same(one_thread, concurrent, what + ": serial on 1 thread vs concurrent");
    }
  }
}

TEST(ParallelTasks, HellaswagTasksGiveTheSerialScoresExactly) {
  const ByteTokenizer tok(true);
  const std::vector<HellaswagTask> tasks = synthetic_tasks(10);
  std::vector<HellaswagTaskTokens> tokens;
  for (const auto& t : tasks) tokens.push_back(tokenize_hellaswag_task(tok, t));
  for (const bool integer : {false, true}) {
    const auto model = integer ? w4a4kv4_model(integer_backend()) : fp32_model(fp32_backend());
    const std::string kind = integer ? "W4A4KV4" : "FP32";
    ThreadCount two(2);
    // The scores themselves: serial forwards on 2 threads vs one task per thread.
    std::vector<std::array<double, 4>> serial(tasks.size()), concurrent(tasks.size());
    for (size_t i = 0; i < tasks.size(); ++i) serial[i] = score_hellaswag_endings(*model, tokens[i]);
    const TaskRunner runner(TaskParallelism::kOn, model->backend(), static_cast<int64_t>(tasks.size()));
    ASSERT_TRUE(runner.concurrent());
    runner.run([&](int64_t i, int) { concurrent[i] = score_hellaswag_endings(*model, tokens[i]); }, [](int64_t) {});
    for (size_t i = 0; i < tasks.size(); ++i)
      for (int e = 0; e < 4; ++e) EXPECT_EQ(serial[i][e], concurrent[i][e]) << kind << " task " << i << " ending " << e;

    HellaswagOptions opt;
    opt.progress = false;
    opt.parallel_tasks = TaskParallelism::kOff;
    const HellaswagResult a = evaluate_hellaswag(*model, tok, tasks, opt);
    opt.parallel_tasks = TaskParallelism::kAuto;
    const HellaswagResult b = evaluate_hellaswag(*model, tok, tasks, opt);
    EXPECT_FALSE(a.concurrent);
    EXPECT_TRUE(b.concurrent);
    EXPECT_EQ(a.tasks, 10);
    EXPECT_EQ(b.tasks, 10);
    EXPECT_EQ(a.acc, b.acc) << kind;
    EXPECT_EQ(a.acc_norm, b.acc_norm) << kind;
    EXPECT_EQ(a.acc_stderr, b.acc_stderr) << kind;
    EXPECT_EQ(a.acc_norm_stderr, b.acc_norm_stderr) << kind;
    // And the accuracy is the one the scores give.
    int correct = 0;
    for (size_t i = 0; i < tasks.size(); ++i) correct += hellaswag_choice(serial[i]) == tasks[i].label;
    EXPECT_EQ(b.acc, correct / 10.0) << kind;
  }
}

// A backend that cannot run forwards concurrently gets the serial loop: every op is
// called from the evaluating thread, and the result is the same.
TEST(ParallelTasks, BackendWithoutConcurrentForwardsRunsSerially) {
  ThreadCount two(2);
  const auto serial_backend = std::make_shared<ProbeBackend>(fp32_backend(), false);
  const auto concurrent_backend = std::make_shared<ProbeBackend>(fp32_backend(), true);
  const auto serial_model = fp32_model(serial_backend);
  const auto concurrent_model = fp32_model(concurrent_backend);
  const std::vector<int32_t> ids = token_stream(4 * 64, serial_model->config().vocab_size);
  PerplexityOptions opt;
  opt.progress = false;
  opt.seqlen = 64;
  opt.parallel_tasks = TaskParallelism::kOn;
  const PerplexityResult a = evaluate_perplexity(*serial_model, ids, opt);
  EXPECT_FALSE(a.concurrent);
  EXPECT_EQ(serial_backend->linear_callers(), std::set<std::thread::id>{std::this_thread::get_id()});
  const PerplexityResult b = evaluate_perplexity(*concurrent_model, ids, opt);
  EXPECT_TRUE(b.concurrent);
  expect_same(a, b, "probe backends");

  const ByteTokenizer tok(true);
  HellaswagOptions hopt;
  hopt.progress = false;
  hopt.parallel_tasks = TaskParallelism::kOn;
  const HellaswagResult h = evaluate_hellaswag(*serial_model, tok, synthetic_tasks(3), hopt);
  EXPECT_FALSE(h.concurrent);
  EXPECT_EQ(serial_backend->linear_callers(), std::set<std::thread::id>{std::this_thread::get_id()});
}

}  // namespace
}  // namespace quarot
