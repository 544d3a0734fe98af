#include "eval/bench.h"

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <thread>
#include <utility>

#include "common/error.h"
#include "common/rng.h"
#include "common/threads.h"
#include "common/wait_policy.h"
#include "kernels/cpu/aligned_buffer.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/weight_arena.h"
#include "kernels/op_phases.h"

namespace quarot {
namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A /proc/self/status field in bytes ("VmHWM", "VmRSS"); 0 where unavailable.
int64_t proc_status_bytes(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::atoll(line.c_str() + key.size()) * 1024;  // reported in kB
  return 0;
}

// Size of the weights on disk: the file, or the files of a checkpoint directory.
int64_t model_file_bytes(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    const auto n = fs::file_size(path, ec);
    return ec ? 0 : static_cast<int64_t>(n);
  }
  int64_t total = 0;
  for (const auto& e : fs::directory_iterator(path, ec))
    if (e.is_regular_file(ec) && e.path().extension() == ".safetensors") total += static_cast<int64_t>(e.file_size(ec));
  return total;
}

// ---- length-prefixed JSON messages over pipes

void write_all(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("bench: writing to a worker process failed: {}", std::strerror(errno));
    c += w;
    n -= static_cast<size_t>(w);
  }
}

// False on end of file before the first byte.
bool read_all(int fd, void* p, size_t n) {
  char* c = static_cast<char*>(p);
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, c + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("bench: reading from a worker process failed: {}", std::strerror(errno));
    if (r == 0) {
      if (got == 0) return false;
      fail("bench: a worker process sent a truncated message");
    }
    got += static_cast<size_t>(r);
  }
  return true;
}

void send_json(int fd, const nlohmann::json& j) {
  const std::string s = j.dump();
  const uint64_t n = s.size();
  write_all(fd, &n, sizeof n);
  write_all(fd, s.data(), s.size());
}

bool recv_json(int fd, nlohmann::json& j) {
  uint64_t n = 0;
  if (!read_all(fd, &n, sizeof n)) return false;
  if (n > (uint64_t{1} << 30)) fail("bench: a worker process sent a message of {} bytes", n);
  std::string s(n, '\0');
  if (n > 0 && !read_all(fd, s.data(), n)) fail("bench: a worker process sent a truncated message");
  j = nlohmann::json::parse(s);
  return true;
}

// ---- one model, inside its process

class ModelRunner {
 public:
  ModelRunner(const std::string& name, const ModelOpener& open, const BenchOptions& opt) : opt_(opt) {
    const auto t0 = std::chrono::steady_clock::now();
    s_ = open(name);
    const LlamaConfig& c = s_.model->config();
    if (opt.prefill_tokens + opt.decode_tokens > c.max_context)
      fail("bench: {}: {} + {} tokens exceed the model's context of {}", name, opt.prefill_tokens, opt.decode_tokens,
           c.max_context);
    Rng rng(1234);
    prompt_.resize(opt.prefill_tokens);
    for (auto& t : prompt_) t = static_cast<int32_t>(rng.below(c.vocab_size));
    cache_ = s_.model->make_cache(opt.prefill_tokens + opt.decode_tokens);
    // Warm-up: page the weights in, size the scratch buffers, start the threads.
    s_.model->forward(prompt_.data(), std::min<int64_t>(16, opt.prefill_tokens), cache_, logits_, false);
    decode(prompt_.back(), 2);
    cache_.clear();
    load_seconds_ = seconds_since(t0);
  }

  nlohmann::json info() const {
    const DecodeTraffic t = decode_traffic(*s_.model, cache_);
    return {{"path", s_.path},
            {"description", s_.description},
            {"backend", s_.backend ? s_.backend->name() : std::string("unknown")},
            {"host_memory", s_.backend ? s_.backend->host_memory() : true},
            {"file_bytes", model_file_bytes(s_.path)},
            {"rss_after_load_bytes", proc_status_bytes("VmRSS")},
            {"load_seconds", load_seconds_},
            {"weight_bytes", t.weight_bytes},
            {"kv_bytes_per_position", t.kv_bytes_per_position},
            {"prefill_flops_per_token", prefill_flops_per_token(s_.model->config(), opt_.prefill_tokens)}};
  }

  // Prefill, decode after the prompt, decode from an empty cache: seconds each (and,
  // when profiling, the op-by-op time of the first two).
  nlohmann::json repetition() {
    OpProfile* profile = opt_.profile.get();
    nlohmann::json profiles;
    cache_.clear();
    // This process's own thread topology before and after its timings: on a VM the host
    // may move the vCPUs between core complexes at any time, so the bandwidth child's
    // figure (measured in another process, seconds later) may describe another one.
    const double round_trip_before = thread_round_trip_ns();
    if (profile) profile->reset();
    auto t0 = std::chrono::steady_clock::now();
    s_.model->forward(prompt_.data(), opt_.prefill_tokens, cache_, logits_, false);
    const double prefill = seconds_since(t0);
    if (profile) profiles["prefill"] = op_profile_json(*profile, prefill, opt_.prefill_tokens);
    const int32_t next = argmax();
    if (profile) profile->reset();
    t0 = std::chrono::steady_clock::now();
    decode(next, opt_.decode_tokens);
    const double after = seconds_since(t0);
    if (profile) profiles["decode_after_prompt"] = op_profile_json(*profile, after, opt_.decode_tokens);
    cache_.clear();
    t0 = std::chrono::steady_clock::now();
    decode(prompt_.front(), opt_.decode_tokens);
    const double empty = seconds_since(t0);
    nlohmann::json r = {{"prefill_s", prefill}, {"decode_after_prompt_s", after}, {"decode_empty_s", empty},
                        {"round_trip_ns", {round_trip_before, thread_round_trip_ns()}}};
    if (profile) r["profile"] = profiles;
    return r;
  }

 private:
  int32_t argmax() const {
    return static_cast<int32_t>(std::max_element(logits_.begin(), logits_.end()) - logits_.begin());
  }
  // Greedy decoding of n tokens; the argmax is part of the timed step.
  void decode(int32_t token, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      s_.model->forward(&token, 1, cache_, logits_, false);
      token = argmax();
    }
  }

  BenchOptions opt_;
  ModelSession s_;
  std::vector<int32_t> prompt_;
  KvCache cache_;
  std::vector<float> logits_;
  double load_seconds_ = 0;
};

// ---- child processes

// A forked worker: commands go down one pipe, JSON replies come up the other.
class Worker {
 public:
  // Runs body(command_fd, reply_fd) in a child process that exits with its return code.
  template <typename Body>
  explicit Worker(Body&& body) {
    int down[2], up[2];
    if (::pipe(down) != 0) fail("bench: pipe: {}", std::strerror(errno));
    if (::pipe(up) != 0) {
      ::close(down[0]);
      ::close(down[1]);
      fail("bench: pipe: {}", std::strerror(errno));
    }
    std::fflush(nullptr);  // nothing buffered may be written twice
    const int threads = num_threads();
    pid_ = ::fork();
    if (pid_ < 0) {
      for (int fd : {down[0], down[1], up[0], up[1]}) ::close(fd);
      fail("bench: fork: {}", std::strerror(errno));
    }
    if (pid_ == 0) {
      ::close(down[1]);
      ::close(up[0]);
      // The parent's thread count: LLVM's libomp reinitializes in a forked child and
      // would take OMP_NUM_THREADS again (GCC's libgomp keeps the parent's setting).
      omp_set_num_threads(threads);
      int code = 1;
      try {
        code = body(down[0], up[1]);
      } catch (const std::exception& e) {
        try {
          send_json(up[1], {{"error", e.what()}});
        } catch (...) {
        }
      }
      std::fflush(nullptr);
      ::_exit(code);  // no atexit handlers or destructors of the parent's objects
    }
    ::close(down[0]);
    ::close(up[1]);
    to_ = down[1];
    from_ = up[0];
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  ~Worker() {
    if (to_ >= 0) ::close(to_);
    if (from_ >= 0) ::close(from_);
    if (pid_ > 0) {
      if (!finished_) ::kill(pid_, SIGKILL);  // abandoned mid-way (an error elsewhere)
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }

  void command(char c) const { write_all(to_, &c, 1); }
  // Returns once this process has stopped running: see wait_until_idle.
  void settle() const { wait_until_idle(pid_); }
  // The next reply; throws Error naming `who` on an error reply or a dead worker.
  nlohmann::json reply(const std::string& who) const {
    nlohmann::json j;
    if (!recv_json(from_, j)) fail("bench: the process running {} ended unexpectedly", who);
    if (j.contains("error")) throw Error(j["error"].get<std::string>());
    return j;
  }
  void mark_finished() { finished_ = true; }

 private:
  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  bool finished_ = false;
};

int model_worker(int cmd_fd, int reply_fd, const std::string& name, const ModelOpener& open,
                 const BenchOptions& opt) {
  ModelRunner runner(name, open, opt);
  send_json(reply_fd, runner.info());
  char c = 0;
  while (read_all(cmd_fd, &c, 1)) {
    if (c == 'r') {
      send_json(reply_fd, runner.repetition());
    } else if (c == 'q') {
      send_json(reply_fd, {{"peak_rss_bytes", proc_status_bytes("VmHWM")}});
      return 0;
    }
  }
  return 0;  // the parent went away
}

// The bandwidth child: fills its buffer, says so, then answers each 'r' with one
// measurement of the whole buffer and one of each region (ReadBandwidthProbe) until 'q'.
int bandwidth_worker(int cmd_fd, int reply_fd, int64_t bytes, const std::vector<int64_t>& regions) {
  const ReadBandwidthProbe probe(bytes);
  send_json(reply_fd, {{"ready", true}});
  char c = 0;
  while (read_all(cmd_fd, &c, 1)) {
    if (c == 'r') {
      const double gbs = probe.measure_gbs();
      nlohmann::json at = nlohmann::json::array();
      for (int64_t r : regions) at.push_back(probe.measure_gbs(r));
      send_json(reply_fd, {{"gbs", gbs}, {"region_gbs", at}, {"round_trip_ns", thread_round_trip_ns()}});
    } else if (c == 'q') {
      send_json(reply_fd, {{"done", true}});
      return 0;
    }
  }
  return 0;  // the parent went away
}

}  // namespace

// One phase's profile: each op's share of the phase's wall time, time per token, and
// for products the weight bytes streamed per second. What the ops do not account for
// (sampling, the model's own bookkeeping, profiling overhead) is "other".
//
// "online_quantization" sums what QuaRot adds to the decoder layers at run time, as a
// share of their op time (all ops but the embedding, the final norm, lm_head and
// downloads): the activation quantization phase inside the products (online Hadamard
// and codes; an RMSNorm or SwiGLU fused into that pass is its own phase, counted
// apart because the FP32 model computes it too), and the KV cache append (K and V
// quantized) and RoPE with the per-head rotation of q and k (RoPE counts as overhead
// here, so that share is an upper bound).
nlohmann::json op_profile_json(const OpProfile& profile, double wall_seconds, int64_t tokens) {
  static const std::set<std::string> kOutsideLayers = {"embed", "rmsnorm", "linear lm_head", "download"};
  constexpr std::size_t kQuantize = op_phase_index(OpPhase::kActivationQuantize);
  constexpr std::size_t kPrologue = op_phase_index(OpPhase::kFusedPrologue);
  nlohmann::json ops = nlohmann::json::array();
  double layer_seconds = 0, quantize_seconds = 0, prologue_seconds = 0, kv_append_seconds = 0, rope_rotate_seconds = 0;
  for (const OpProfile::Entry& e : profile.entries()) {
    nlohmann::json j = {{"op", e.op},
                        {"calls", e.calls},
                        {"seconds", e.seconds},
                        {"share", wall_seconds > 0 ? e.seconds / wall_seconds : 0.0},
                        {"us_per_token", 1e6 * e.seconds / static_cast<double>(tokens)}};
    if (e.weight_bytes > 0 && e.seconds > 0) j["weight_gbs"] = e.weight_bytes / e.seconds / 1e9;
    for (std::size_t p = 0; p < kOpPhaseCount; ++p)
      if (e.phases.seconds[p] > 0)
        j["phases"][op_phase_name(static_cast<OpPhase>(p))] = {
            {"seconds", e.phases.seconds[p]}, {"share_of_op", e.seconds > 0 ? e.phases.seconds[p] / e.seconds : 0.0}};
    ops.push_back(std::move(j));
    if (kOutsideLayers.count(e.op)) continue;
    layer_seconds += e.seconds;
    quantize_seconds += e.phases.seconds[kQuantize];
    prologue_seconds += e.phases.seconds[kPrologue];
    if (e.op == "kv append") kv_append_seconds += e.seconds;
    if (e.op == "rope+rotate q/k") rope_rotate_seconds += e.seconds;
  }
  const auto share = [&](double s) { return layer_seconds > 0 ? s / layer_seconds : 0.0; };
  return {{"wall_seconds", wall_seconds},
          {"op_seconds", profile.total_seconds()},
          {"other_seconds", wall_seconds - profile.total_seconds()},
          {"online_quantization",
           {{"layer_op_seconds", layer_seconds},
            {"activation_quantize_seconds", quantize_seconds},
            {"activation_quantize_share", share(quantize_seconds)},
            {"fused_norm_gating_seconds", prologue_seconds},
            {"kv_append_seconds", kv_append_seconds},
            {"rope_rotate_qk_seconds", rope_rotate_seconds},
            {"share_with_kv_append_and_rope", share(quantize_seconds + kv_append_seconds + rope_rotate_seconds)}}},
          {"ops", ops}};
}

int64_t process_cpu_ns(pid_t pid) {
  const std::filesystem::path tasks = fmt::format("/proc/{}/task", pid);
  std::error_code ec;
  std::filesystem::directory_iterator it(tasks, ec);
  if (ec) return -1;
  int64_t total = 0;
  bool any = false;
  for (const auto& task : it) {
    std::ifstream f(task.path() / "schedstat");
    int64_t ns = 0;
    if (f >> ns) {
      total += ns;
      any = true;
    }
  }
  return any ? total : -1;
}

void wait_until_idle(pid_t pid) {
  using namespace std::chrono_literals;
  const auto t0 = std::chrono::steady_clock::now();
  int64_t before = process_cpu_ns(pid);
  if (before < 0) {
    std::this_thread::sleep_for(100ms);
    return;
  }
  while (std::chrono::steady_clock::now() - t0 < 2s) {
    std::this_thread::sleep_for(10ms);
    const int64_t now = process_cpu_ns(pid);
    if (now < 0 || now - before < 1'000'000) return;  // < 1 ms of CPU in 10 ms
    before = now;
  }
}

ReadBandwidthProbe::ReadBandwidthProbe(int64_t bytes)
    : storage_(std::max<int64_t>(16, bytes / static_cast<int64_t>(sizeof(float)) / 16 * 16), Placement::kWeights) {
  // On the pages packed weights live on (weight_arena.h): on the 2-vCPU Zen 4 this loop
  // reads 33.5-34.3 GB/s from 2 MiB pages and 30.2-31.2 from 4 KiB heap pages.
  float* buf = storage_.data();
  const int64_t n = static_cast<int64_t>(storage_.size());
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<float>(i & 1023);
}

double thread_round_trip_ns(int64_t round_trips) {
  if (num_threads() < 2 || round_trips < 1) return 0.0;
  alignas(64) std::atomic<int64_t> counter{0};
  double seconds = 0;
#pragma omp parallel num_threads(2)
  if (omp_get_num_threads() == 2) {  // a team of one (nested, thread limit) would wait forever
    // Thread t moves the counter from an even (t = 0) or odd (t = 1) value to the next;
    // a thread that waits long yields, so an oversubscribed machine still finishes.
    const int64_t t = omp_get_thread_num();
#pragma omp barrier
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < round_trips; ++i) {
      const int64_t mine = 2 * i + t;
      for (int64_t spins = 0; counter.load(std::memory_order_acquire) != mine; ++spins)
        if (spins > (int64_t{1} << 16)) std::this_thread::yield();
      counter.store(mine + 1, std::memory_order_release);
    }
    if (t == 0) seconds = seconds_since(t0);
  }
  return seconds / static_cast<double>(round_trips) * 1e9;
}

double ReadBandwidthProbe::measure_gbs(int64_t region) const {
  const float* buf = storage_.data();
  const int64_t all = static_cast<int64_t>(storage_.size());
  const int64_t part = region / static_cast<int64_t>(sizeof(float)) / 16 * 16;
  const bool whole = region <= 0 || part >= all;
  const int64_t n = whole ? all : std::max<int64_t>(16, part);
  double best = 0.0;
  for (int rep = whole ? 0 : -1; rep < 3; ++rep) {  // a region: one untimed pass first
    const auto t0 = std::chrono::steady_clock::now();
    float total = 0.0f;
    // Sixteen independent partial sums per thread: the compiler turns them into
    // vector lanes without reassociating, so the loop is limited by memory, not
    // by the latency of one scalar add chain.
#pragma omp parallel reduction(+ : total)
    {
      float acc[16] = {};
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; i += 16) {
#pragma omp simd
        for (int j = 0; j < 16; ++j) acc[j] += buf[i + j];
      }
      for (float a : acc) total += a;
    }
    const double s = seconds_since(t0);
    if (total == -1.0f) std::abort();  // keeps the sum alive
    if (rep >= 0) best = std::max(best, static_cast<double>(n) * sizeof(float) / s / 1e9);
  }
  return best;
}

DecodeTraffic decode_traffic(const LlamaModel& model, const KvCache& cache) {
  // The weights as the backend packed them (FP32 for the simulated reference,
  // codes and scales or FP16 read in place for the integer path).
  DecodeTraffic t;
  t.weight_bytes = static_cast<double>(model.weight_bytes_per_token());
  // The KV cache as the backend stores it.
  t.kv_bytes_per_position =
      cache.capacity() > 0 ? static_cast<double>(cache.bytes()) / static_cast<double>(cache.capacity()) : 0.0;
  return t;
}

double prefill_flops_per_token(const LlamaConfig& c, int64_t prompt_tokens) {
  const double layer_params = static_cast<double>(c.hidden * (c.q_dim() + 2 * c.kv_dim()) + c.q_dim() * c.hidden +
                                                  3 * c.hidden * c.intermediate);
  // Q.K and P.V: 2 * head_dim multiply-adds each per head and key; a causal prompt
  // sees (P + 1) / 2 keys per token on average. lm_head runs for the last token only.
  const double attention = 2.0 * 2.0 * static_cast<double>(c.n_heads * c.head_dim) * (prompt_tokens + 1) / 2.0;
  return c.n_layers * (2.0 * layer_params + attention) +
         2.0 * static_cast<double>(c.vocab_size * c.hidden) / static_cast<double>(prompt_tokens);
}

BenchReport run_bench(const std::vector<std::string>& models, const ModelOpener& open, const BenchOptions& opt) {
  if (models.empty()) fail("bench: no model given");
  BenchOptions::kTokens.check(opt.prefill_tokens, "bench prefill tokens");
  BenchOptions::kTokens.check(opt.decode_tokens, "bench decode tokens");
  BenchOptions::kRepeats.check(opt.repeats, "bench repeats");
  BenchReport rep;
  rep.cpu = cpu_description();
  rep.openmp_wait = describe_wait_policy();
  rep.weight_memory = weight_arena::describe();
  rep.threads = num_threads();
  rep.prefill_tokens = opt.prefill_tokens;
  rep.decode_tokens = opt.decode_tokens;
  rep.repeats = opt.repeats;
  rep.method =
      "each model loaded and run in a child process of its own, one at a time, repetitions interleaved "
      "model by model, each started once the previous process's threads stopped running; peak_rss_bytes is that process's VmHWM (weights, mapped file pages, KV cache, scratch)";

  // One model loads at a time, so a load does not disturb another's measurements.
  std::vector<std::unique_ptr<Worker>> workers;
  for (const std::string& name : models) {
    workers.push_back(std::make_unique<Worker>(
        [&](int cmd_fd, int reply_fd) { return model_worker(cmd_fd, reply_fd, name, open, opt); }));
    const nlohmann::json info = workers.back()->reply(name);
    ModelBenchResult m;
    m.model = name;
    m.path = info.at("path").get<std::string>();
    m.description = info.at("description").get<std::string>();
    m.backend = info.at("backend").get<std::string>();
    m.host_memory = info.at("host_memory").get<bool>();
    m.file_bytes = info.at("file_bytes").get<int64_t>();
    m.rss_after_load_bytes = info.at("rss_after_load_bytes").get<int64_t>();
    m.load_seconds = info.at("load_seconds").get<double>();
    m.traffic.weight_bytes = info.at("weight_bytes").get<double>();
    m.traffic.kv_bytes_per_position = info.at("kv_bytes_per_position").get<double>();
    m.prefill_flops_per_token = info.at("prefill_flops_per_token").get<double>();
    rep.models.push_back(std::move(m));
    workers.back()->settle();  // its warm-up's threads must not spin into the next load
  }
  // The bandwidth is measured once per round, right after the models' repetitions of that
  // round, by a child that keeps its buffer (so the pages are in place) and gives the memory
  // back when it exits: a shared machine's bandwidth moves within minutes (1.8x seen between
  // rounds on a 2-vCPU VM), so one probe at the start can disagree with the decode runs it
  // bounds; the report takes the median of the rounds, as it does for the rates.
  // Each host-memory model's decode footprints (after the prompt, from empty) as regions
  // of the probe: regions[2 * i], regions[2 * i + 1] (0 = not measured).
  std::vector<int64_t> regions;
  for (const ModelBenchResult& m : rep.models) {
    for (const int64_t context0 : {opt.prefill_tokens, int64_t{0}})
      regions.push_back(m.host_memory ? static_cast<int64_t>(m.traffic.bytes_per_token(context0, opt.decode_tokens)) : 0);
  }
  std::vector<int64_t> measured;
  for (int64_t r : regions)
    if (r > 0) measured.push_back(r);
  Worker bw([&](int cmd_fd, int reply_fd) {
    return bandwidth_worker(cmd_fd, reply_fd, opt.bandwidth_buffer_bytes, measured);
  });
  bw.reply("the bandwidth measurement");
  bw.settle();

  std::vector<std::vector<double>> prefill(models.size()), after(models.size()), empty(models.size());
  for (int r = 0; r < opt.repeats; ++r) {
    for (size_t i = 0; i < models.size(); ++i) {
      workers[i]->command('r');
      const nlohmann::json t = workers[i]->reply(models[i]);
      prefill[i].push_back(t.at("prefill_s").get<double>());
      after[i].push_back(t.at("decode_after_prompt_s").get<double>());
      empty[i].push_back(t.at("decode_empty_s").get<double>());
      if (t.contains("profile")) rep.models[i].profile = t.at("profile");
      for (double ns : t.at("round_trip_ns")) rep.models[i].thread_round_trip_ns_all.push_back(ns);
      workers[i]->settle();  // each process starts on idle cores (wait_until_idle)
    }
    bw.command('r');
    const nlohmann::json m = bw.reply("the bandwidth measurement");
    rep.read_bandwidth_gbs_all.push_back(m.at("gbs").get<double>());
    const nlohmann::json& at = m.at("region_gbs");
    for (size_t i = 0, k = 0; i < rep.models.size(); ++i)
      for (int side = 0; side < 2; ++side)
        if (regions[2 * i + side] > 0) {
          std::vector<double>& dst =
              side == 0 ? rep.models[i].footprint_gbs_after_prompt_all : rep.models[i].footprint_gbs_empty_all;
          dst.push_back(at.at(k++).get<double>());
        }
    rep.thread_round_trip_ns_all.push_back(m.at("round_trip_ns").get<double>());
    bw.settle();
  }
  bw.command('q');
  bw.reply("the bandwidth measurement");
  bw.mark_finished();
  rep.read_bandwidth_gbs = RateSummary{rep.read_bandwidth_gbs_all}.median();
  for (size_t i = 0; i < models.size(); ++i) {
    workers[i]->command('q');
    rep.models[i].peak_rss_bytes = workers[i]->reply(models[i]).at("peak_rss_bytes").get<int64_t>();
    workers[i]->mark_finished();
    rep.models[i].prefill = rates_from_seconds(opt.prefill_tokens, prefill[i]);
    rep.models[i].decode_after_prompt = rates_from_seconds(opt.decode_tokens, after[i]);
    rep.models[i].decode_empty = rates_from_seconds(opt.decode_tokens, empty[i]);
  }
  return rep;
}

}  // namespace quarot
