// The untimed parts of the multi-model benchmark: model lists, baseline choice,
// summaries, ratios, bytes per token, the JSON shape, and the worker-process
// protocol on a tiny synthetic model (its figures are only checked for sanity,
// never against a time; the quiescence wait's tests bound a wait from above only).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cmath>

#include "common/error.h"
#include "common/threads.h"
#include "eval/bench.h"
#include "eval/bench_report.h"
#include "kernels/backend.h"

namespace quarot {
namespace {

TEST(BenchModelList, SplitsCommasAndRepeatedEntries) {
  EXPECT_EQ(split_model_list({"a,b", "c"}), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(split_model_list({" a , b "}), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(split_model_list({"x.gguf"}), (std::vector<std::string>{"x.gguf"}));
  // The same model twice is allowed (a check of the measurement noise).
  EXPECT_EQ(split_model_list({"a", "a"}).size(), 2u);
}

// The profile's "online_quantization" summary from hand-made entries: the products'
// quantization phases, the KV append and RoPE+rotation count; the embedding, the final
// norm and lm_head are outside the layers; a fused prologue is reported apart.
TEST(BenchProfile, OnlineQuantizationShareOfTheLayers) {
  OpProfile p;
  OpPhaseTimes down, qkv;
  down.seconds[op_phase_index(OpPhase::kActivationQuantize)] = 0.5;
  down.seconds[op_phase_index(OpPhase::kFusedPrologue)] = 0.25;
  qkv.seconds[op_phase_index(OpPhase::kActivationQuantize)] = 0.25;
  p.add("swiglu+linear down_proj", 4.0, 8, 100.0, down);
  p.add("rmsnorm+linear q_proj+k_proj+v_proj", 2.0, 8, 50.0, qkv);
  p.add("attention", 1.0, 8);
  p.add("kv append", 0.5, 8);
  p.add("rope+rotate q/k", 0.5, 8);
  p.add("embed", 3.0, 8);
  p.add("rmsnorm", 3.0, 1);
  p.add("linear lm_head", 9.0, 1, 10.0, qkv);  // outside the layers, phases and all
  const nlohmann::json j = op_profile_json(p, 30.0, 8);
  const nlohmann::json& q = j.at("online_quantization");
  EXPECT_DOUBLE_EQ(q.at("layer_op_seconds").get<double>(), 8.0);
  EXPECT_DOUBLE_EQ(q.at("activation_quantize_seconds").get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(q.at("activation_quantize_share").get<double>(), 0.75 / 8.0);
  EXPECT_DOUBLE_EQ(q.at("fused_norm_gating_seconds").get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(q.at("kv_append_seconds").get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(q.at("rope_rotate_qk_seconds").get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(q.at("share_with_kv_append_and_rope").get<double>(), 1.75 / 8.0);
  EXPECT_DOUBLE_EQ(j.at("op_seconds").get<double>(), 23.0);
  for (const auto& op : j.at("ops")) {
    if (op.at("op") == "swiglu+linear down_proj") {
      EXPECT_DOUBLE_EQ(op.at("phases").at("activation quantize").at("share_of_op").get<double>(), 0.125);
      EXPECT_DOUBLE_EQ(op.at("phases").at("fused norm/gating").at("seconds").get<double>(), 0.25);
    }
    if (op.at("op") == "attention") {
      EXPECT_FALSE(op.contains("phases"));
    }
  }
}

TEST(BenchRoundTrip, TwoThreadsPassTheLineOneThreadHasNoneToPass) {
  set_num_threads(2);
  const double ns = thread_round_trip_ns(500);
  EXPECT_GT(ns, 0.0);
  EXPECT_TRUE(std::isfinite(ns));
  EXPECT_EQ(thread_round_trip_ns(0), 0.0);
  set_num_threads(1);
  EXPECT_EQ(thread_round_trip_ns(500), 0.0);
  set_num_threads(0);
}

TEST(BenchModelList, RejectsEmptyNames) {
  EXPECT_THROW(split_model_list({}), Error);
  EXPECT_THROW(split_model_list({""}), Error);
  EXPECT_THROW(split_model_list({"a,,b"}), Error);
  EXPECT_THROW(split_model_list({"a,"}), Error);
  EXPECT_THROW(split_model_list({" "}), Error);
}

TEST(BenchBaseline, DefaultsToFirstAndFindsByName) {
  const std::vector<std::string> m{"fp", "w4", "w8", "w4"};
  EXPECT_EQ(baseline_index(m, ""), 0u);
  EXPECT_EQ(baseline_index(m, "w8"), 2u);
  EXPECT_EQ(baseline_index(m, "w4"), 1u);  // the first of equal names
  try {
    baseline_index(m, "nope");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos);
  }
}

TEST(BenchSummary, MedianBestAndRates) {
  const RateSummary odd = rates_from_seconds(100, {2.0, 1.0, 4.0});
  EXPECT_EQ(odd.all, (std::vector<double>{50.0, 100.0, 25.0}));  // order of measurement kept
  EXPECT_DOUBLE_EQ(odd.median(), 50.0);
  EXPECT_DOUBLE_EQ(odd.best(), 100.0);
  const RateSummary even = rates_from_seconds(10, {1.0, 2.0, 0.5, 0.25});
  EXPECT_DOUBLE_EQ(even.median(), (10.0 + 20.0) / 2.0);
  EXPECT_THROW(rates_from_seconds(10, {1.0, 0.0}), Error);
  EXPECT_THROW(rates_from_seconds(10, {-1.0}), Error);
  EXPECT_THROW(rates_from_seconds(0, {1.0}), Error);
}

TEST(BenchTraffic, MeanContextOfTheDecodeSteps) {
  DecodeTraffic t;
  t.weight_bytes = 1000;
  t.kv_bytes_per_position = 10;
  // One step from an empty cache attends to its own position only.
  EXPECT_DOUBLE_EQ(t.bytes_per_token(0, 1), 1010.0);
  // Steps over contexts 6, 7, 8, 9 (after a prompt of 5): mean 7.5 positions.
  EXPECT_DOUBLE_EQ(t.bytes_per_token(5, 4), 1000.0 + 75.0);
}

TEST(BenchTraffic, Fp32ModelReadsFourBytesPerParameter) {
  const LlamaConfig c = tiny_test_config();
  const LlamaModel model(make_synthetic_model(c, 3), RuntimeRecipe{}, make_cpu_backend());
  const DecodeTraffic t = decode_traffic(model, model.make_cache(16));
  const double layer = c.hidden * (c.q_dim() + 2 * c.kv_dim()) + c.q_dim() * c.hidden + 3 * c.hidden * c.intermediate;
  const double lm_head = static_cast<double>(c.vocab_size) * c.hidden;
  // Linear weights dominate; norms and one embedding row add a little, never less.
  EXPECT_GE(t.weight_bytes, 4.0 * (c.n_layers * layer + lm_head));
  EXPECT_LE(t.weight_bytes, 4.0 * (c.n_layers * layer + lm_head) + 4.0 * (2 * c.n_layers + 2) * c.hidden + 1);
  EXPECT_DOUBLE_EQ(t.kv_bytes_per_position, 4.0 * 2 * c.n_layers * c.kv_dim());
}

ModelBenchResult fake_result(const std::string& name, double prefill_s, double decode_s, int64_t file, int64_t rss) {
  ModelBenchResult m;
  m.model = name;
  m.path = name + ".file";
  m.backend = "test-backend";
  m.file_bytes = file;
  m.peak_rss_bytes = rss;
  m.traffic.weight_bytes = 1e6;
  m.traffic.kv_bytes_per_position = 100;
  m.prefill_flops_per_token = 1e6;
  m.prefill = rates_from_seconds(512, {prefill_s, prefill_s * 2, prefill_s / 2});
  m.decode_after_prompt = rates_from_seconds(128, {decode_s});
  m.decode_empty = rates_from_seconds(128, {decode_s / 2});
  return m;
}

TEST(BenchReportJson, RatiosToTheChosenBaselineAndShape) {
  BenchReport r;
  r.cpu = "test cpu";
  r.threads = 2;
  r.prefill_tokens = 512;
  r.decode_tokens = 128;
  r.repeats = 3;
  r.read_bandwidth_gbs = 10.0;
  r.models = {fake_result("fp", 1.0, 4.0, 400, 800), fake_result("w4", 0.25, 1.0, 100, 200)};
  r.baseline = 0;
  nlohmann::json j = bench_report_json(r);
  EXPECT_EQ(j["cpu"], "test cpu");
  EXPECT_EQ(j["baseline"], "fp");
  ASSERT_EQ(j["models"].size(), 2u);
  const auto& w4 = j["models"][1];
  EXPECT_EQ(w4["backend"], "test-backend");
  EXPECT_DOUBLE_EQ(w4["prefill"]["tokens_per_s"].get<double>(), 512 / 0.25);
  EXPECT_EQ(w4["prefill"]["tokens_per_s_all"].size(), 3u);
  EXPECT_DOUBLE_EQ(w4["prefill"]["gflops"].get<double>(), 512 / 0.25 * 1e6 / 1e9);
  EXPECT_DOUBLE_EQ(w4["ratio_to_baseline"]["prefill"].get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(w4["ratio_to_baseline"]["decode_after_prompt"].get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(w4["ratio_to_baseline"]["decode_empty"].get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(w4["ratio_to_baseline"]["file_bytes"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(w4["ratio_to_baseline"]["peak_rss_bytes"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(j["models"][0]["ratio_to_baseline"]["prefill"].get<double>(), 1.0);
  // Decode after the prompt: mean context 512 + 64.5 positions.
  const auto& d = w4["decode_after_prompt"];
  EXPECT_EQ(d["context"], 512);
  EXPECT_DOUBLE_EQ(d["bytes_per_token"].get<double>(), 1e6 + 100 * 576.5);
  EXPECT_DOUBLE_EQ(d["bandwidth_bound_tokens_per_s"].get<double>(), 10e9 / (1e6 + 100 * 576.5));
  EXPECT_DOUBLE_EQ(d["fraction_of_bandwidth_bound"].get<double>(), 128.0 / (10e9 / (1e6 + 100 * 576.5)));
  EXPECT_DOUBLE_EQ(w4["decode_empty"]["bytes_per_token"].get<double>(), 1e6 + 100 * 64.5);
  EXPECT_TRUE(d["fraction_of_bandwidth_bound_all"].is_null());  // no per-round bandwidth given
  // With one bandwidth per round, each repetition against its own round's bound.
  r.read_bandwidth_gbs_all = {10.0};
  j = bench_report_json(r);
  ASSERT_EQ(j["models"][1]["decode_after_prompt"]["fraction_of_bandwidth_bound_all"].size(), 1u);
  EXPECT_DOUBLE_EQ(j["models"][1]["decode_after_prompt"]["fraction_of_bandwidth_bound_all"][0].get<double>(),
                   128.0 / (10e9 / (1e6 + 100 * 576.5)));
  r.read_bandwidth_gbs_all = {20.0};
  j = bench_report_json(r);
  EXPECT_DOUBLE_EQ(j["models"][1]["decode_empty"]["fraction_of_bandwidth_bound_all"][0].get<double>(),
                   2 * 128.0 / (20e9 / (1e6 + 100 * 64.5)));
  r.read_bandwidth_gbs_all = {10.0, 20.0};  // not one per repetition: none
  j = bench_report_json(r);
  EXPECT_TRUE(j["models"][1]["decode_empty"]["fraction_of_bandwidth_bound_all"].is_null());
  r.read_bandwidth_gbs_all.clear();
  // The footprint probe's bound: the median of its rounds over this decode's bytes, and
  // per round only with one figure per repetition; absent (null) where not measured.
  EXPECT_TRUE(j["models"][1]["decode_after_prompt"]["fraction_of_footprint_bound"].is_null());
  r.models[1].footprint_gbs_after_prompt_all = {30.0, 50.0, 40.0};
  j = bench_report_json(r);
  const auto& fp = j["models"][1]["decode_after_prompt"];
  EXPECT_DOUBLE_EQ(fp["footprint_bound_tokens_per_s"].get<double>(), 40e9 / (1e6 + 100 * 576.5));
  EXPECT_DOUBLE_EQ(fp["fraction_of_footprint_bound"].get<double>(), 128.0 / (40e9 / (1e6 + 100 * 576.5)));
  EXPECT_TRUE(fp["fraction_of_footprint_bound_all"].is_null());  // 3 rounds, 1 repetition
  r.models[1].footprint_gbs_after_prompt_all = {50.0};
  j = bench_report_json(r);
  ASSERT_EQ(j["models"][1]["decode_after_prompt"]["fraction_of_footprint_bound_all"].size(), 1u);
  EXPECT_DOUBLE_EQ(j["models"][1]["decode_after_prompt"]["fraction_of_footprint_bound_all"][0].get<double>(),
                   128.0 / (50e9 / (1e6 + 100 * 576.5)));
  EXPECT_TRUE(j["models"][1]["decode_empty"]["fraction_of_footprint_bound"].is_null());
  r.models[1].footprint_gbs_after_prompt_all.clear();
  // A backend with memory of its own (a GPU) is not bounded by the host's bandwidth.
  r.models[1].host_memory = false;
  j = bench_report_json(r);
  EXPECT_TRUE(j["models"][1]["decode_after_prompt"]["bandwidth_bound_tokens_per_s"].is_null());
  EXPECT_TRUE(j["models"][1]["decode_empty"]["fraction_of_bandwidth_bound"].is_null());
  EXPECT_FALSE(j["models"][0]["decode_empty"]["fraction_of_bandwidth_bound"].is_null());
  r.models[1].host_memory = true;

  r.baseline = 1;
  j = bench_report_json(r);
  EXPECT_EQ(j["baseline"], "w4");
  EXPECT_DOUBLE_EQ(j["models"][0]["ratio_to_baseline"]["prefill"].get<double>(), 0.25);
  r.baseline = 2;
  EXPECT_THROW(bench_report_json(r), Error);
}

TEST(BenchReportJson, UnmeasuredBaselineGivesNullRatios) {
  BenchReport r;
  r.prefill_tokens = 512;
  r.decode_tokens = 128;
  r.read_bandwidth_gbs = 10.0;
  r.models = {fake_result("a", 1.0, 1.0, 0, 0), fake_result("b", 1.0, 1.0, 10, 10)};
  const nlohmann::json j = bench_report_json(r);
  EXPECT_TRUE(j["models"][1]["ratio_to_baseline"]["file_bytes"].is_null());
  EXPECT_TRUE(j["models"][1]["ratio_to_baseline"]["peak_rss_bytes"].is_null());
}

// The worker processes on a tiny model: one report per model in the given order,
// one timing per repetition, memory figures from each worker. One thread: a forked
// child must not depend on an OpenMP pool that an earlier test of this process
// may have started.
ModelSession synthetic_session(uint64_t seed) {
  ModelSession s;
  s.path = "synthetic-" + std::to_string(seed);
  s.description = "synthetic";
  s.backend = make_cpu_backend();
  s.model = std::make_unique<LlamaModel>(make_synthetic_model(tiny_test_config(), seed), RuntimeRecipe{}, s.backend);
  return s;
}

TEST(BenchRun, WorkersReportEveryModelAndRepetition) {
  set_num_threads(1);
  BenchOptions opt;
  opt.prefill_tokens = 8;
  opt.decode_tokens = 4;
  opt.repeats = 2;
  opt.bandwidth_buffer_bytes = 16 << 20;
  const BenchReport r = run_bench({"m1", "m2"}, [](const std::string& name) {
    return synthetic_session(name == "m1" ? 1 : 2);
  }, opt);
  set_num_threads(0);
  ASSERT_EQ(r.models.size(), 2u);
  EXPECT_EQ(r.models[0].model, "m1");
  EXPECT_EQ(r.models[1].path, "synthetic-2");
  EXPECT_EQ(r.threads, 1);
  ASSERT_EQ(r.read_bandwidth_gbs_all.size(), 2u);  // one measurement per round
  for (double gbs : r.read_bandwidth_gbs_all) EXPECT_GT(gbs, 0.0);
  ASSERT_EQ(r.thread_round_trip_ns_all.size(), 2u);  // beside each; one thread: none to measure
  for (double ns : r.thread_round_trip_ns_all) EXPECT_EQ(ns, 0.0);
  EXPECT_EQ(bench_report_json(r).at("measured_thread_round_trip_ns_all").size(), 2u);
  EXPECT_EQ(bench_report_json(r).at("models").at(1).at("thread_round_trip_ns_all").size(), 4u);
  EXPECT_EQ(r.read_bandwidth_gbs, RateSummary{r.read_bandwidth_gbs_all}.median());
  EXPECT_EQ(bench_report_json(r).at("measured_read_bandwidth_gbs_all").size(), 2u);
  for (const ModelBenchResult& m : r.models) {
    // Each model's own process: before and after each repetition (one thread: zeros).
    ASSERT_EQ(m.thread_round_trip_ns_all.size(), 4u);
    for (double ns : m.thread_round_trip_ns_all) EXPECT_EQ(ns, 0.0);
    EXPECT_EQ(m.prefill.all.size(), 2u);
    EXPECT_EQ(m.decode_after_prompt.all.size(), 2u);
    EXPECT_EQ(m.decode_empty.all.size(), 2u);
    EXPECT_GT(m.rss_after_load_bytes, 0);
    EXPECT_GE(m.peak_rss_bytes, m.rss_after_load_bytes);
    EXPECT_EQ(m.file_bytes, 0);  // no such file
    EXPECT_FALSE(m.backend.empty());
  }
  EXPECT_NO_THROW(bench_report_json(r));
}

TEST(BenchRun, ErrorsInAWorkerReachTheCaller) {
  set_num_threads(1);
  BenchOptions opt;
  opt.prefill_tokens = 8;
  opt.decode_tokens = 4;
  opt.repeats = 1;
  try {
    run_bench({"ok", "bad"}, [](const std::string& name) -> ModelSession {
      if (name == "bad") fail("cannot open {}", name);
      return synthetic_session(1);
    }, opt);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "cannot open bad");
  }
  // More tokens than the model's context.
  opt.prefill_tokens = tiny_test_config().max_context;
  try {
    run_bench({"long"}, [](const std::string&) { return synthetic_session(1); }, opt);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("context"), std::string::npos) << e.what();
  }
  set_num_threads(0);
}


// The quiescence wait between benchmark children (bench.h: wait_until_idle).
TEST(BenchSettle, ProcessCpuTimeCountsThisProcessWork) {
  const int64_t t0 = process_cpu_ns(::getpid());
  ASSERT_GE(t0, 0) << "no /proc/PID/task/*/schedstat: wait_until_idle falls back to a fixed pause";
  timespec a{}, b{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
  volatile uint64_t sink = 0;
  do {
    for (int i = 0; i < 100000; ++i) sink = sink + i;
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
  } while ((b.tv_sec - a.tv_sec) * 1'000'000'000LL + (b.tv_nsec - a.tv_nsec) < 20'000'000LL);
  // 20 ms of this thread's CPU time; schedstat may lag by a scheduler tick.
  EXPECT_GT(process_cpu_ns(::getpid()) - t0, 10'000'000);
  EXPECT_EQ(process_cpu_ns(-1), -1);
}

TEST(BenchSettle, AnIdleProcessIsSettledAtOnce) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::sleep(5);
    ::_exit(0);
  }
  const auto t0 = std::chrono::steady_clock::now();
  wait_until_idle(child);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_LT(waited, 1.0);  // one or two 10 ms windows; the cap is 2 s
}

}  // namespace
}  // namespace quarot
