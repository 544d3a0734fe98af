#include "eval/bench_report.h"

#include <algorithm>

#include "common/error.h"

namespace quarot {
namespace {
std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// A ratio that stays valid JSON when the denominator is zero (an unmeasured figure).
nlohmann::json ratio(double num, double den) {
  if (!(den > 0)) return nullptr;
  return num / den;
}

nlohmann::json rate_json(int64_t tokens, const RateSummary& r) {
  return {{"tokens", tokens},
          {"tokens_per_s", r.median()},
          {"tokens_per_s_best", r.best()},
          {"tokens_per_s_all", r.all}};
}

// bandwidth_gbs is the host's: it bounds a backend that computes in host memory only
// (a GPU reads its own memory, many times faster), so other backends get no bound.
// The bound is the median round's bandwidth; each repetition also gets its own round's
// (repetition i ran in round i), since a VM's bandwidth can change between rounds.
// The bound at one bandwidth and the fraction of it reached, overall and round by round
// (each repetition against its own round's figure, only with one figure per repetition),
// under keys PREFIX + "bound_tokens_per_s", "fraction_of_" + PREFIX + "bound" and that +
// "_all"; all null when gbs <= 0 (not measured).
void bound_json(nlohmann::json& j, const std::string& prefix, const RateSummary& r, double bytes, double gbs,
                const std::vector<double>& round_gbs) {
  const std::string fraction = "fraction_of_" + prefix + "bound";
  if (!(gbs > 0)) {
    j[prefix + "bound_tokens_per_s"] = nullptr;
    j[fraction] = nullptr;
    j[fraction + "_all"] = nullptr;
    return;
  }
  const double bound = gbs * 1e9 / bytes;
  j[prefix + "bound_tokens_per_s"] = bound;
  j[fraction] = ratio(r.median(), bound);
  nlohmann::json per_round = nullptr;
  if (!round_gbs.empty() && round_gbs.size() == r.all.size()) {
    per_round = nlohmann::json::array();
    for (size_t i = 0; i < r.all.size(); ++i) per_round.push_back(ratio(r.all[i], round_gbs[i] * 1e9 / bytes));
  }
  j[fraction + "_all"] = per_round;
}

// bandwidth_gbs / round_gbs: the 512 MiB probe (median, per round); footprint_gbs: the
// probe over a region of this decode's bytes per token, per round (ModelBenchResult),
// whose bound counts what the caches keep between tokens. Host-memory backends only.
nlohmann::json decode_json(int64_t context0, int64_t tokens, const RateSummary& r, const DecodeTraffic& t,
                           double bandwidth_gbs, const std::vector<double>& round_gbs,
                           const std::vector<double>& footprint_gbs, bool host_memory) {
  nlohmann::json j = rate_json(tokens, r);
  const double bytes = t.bytes_per_token(context0, tokens);
  j["context"] = context0;
  j["bytes_per_token"] = bytes;
  const double footprint = footprint_gbs.empty() ? 0.0 : RateSummary{footprint_gbs}.median();
  bound_json(j, "bandwidth_", r, bytes, host_memory ? bandwidth_gbs : 0.0, round_gbs);
  j["footprint_read_bandwidth_gbs_all"] = host_memory ? nlohmann::json(footprint_gbs) : nlohmann::json(nullptr);
  bound_json(j, "footprint_", r, bytes, host_memory ? footprint : 0.0, footprint_gbs);
  return j;
}
}  // namespace

std::vector<std::string> split_model_list(const std::vector<std::string>& entries) {
  std::vector<std::string> out;
  for (const std::string& e : entries) {
    size_t start = 0;
    while (true) {
      const size_t comma = e.find(',', start);
      const std::string name = trim(e.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (name.empty()) fail("bench: empty model name in '{}'", e);
      out.push_back(name);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (out.empty()) fail("bench: no model given");
  return out;
}

size_t baseline_index(const std::vector<std::string>& models, const std::string& baseline) {
  if (baseline.empty()) return 0;
  const auto it = std::find(models.begin(), models.end(), baseline);
  if (it == models.end()) fail("bench: baseline '{}' is not one of the benchmarked models", baseline);
  return static_cast<size_t>(it - models.begin());
}

double RateSummary::median() const {
  if (all.empty()) return 0.0;
  std::vector<double> v = all;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double RateSummary::best() const { return all.empty() ? 0.0 : *std::max_element(all.begin(), all.end()); }

RateSummary rates_from_seconds(int64_t tokens, const std::vector<double>& seconds) {
  if (tokens < 1) fail("bench: token count {} is not positive", tokens);
  RateSummary r;
  for (double s : seconds) {
    if (!(s > 0)) fail("bench: a timing of {} s is not positive", s);
    r.all.push_back(static_cast<double>(tokens) / s);
  }
  return r;
}

double DecodeTraffic::bytes_per_token(int64_t context0, int64_t tokens) const {
  // Step i attends over context0 + i + 1 positions (its own K/V included); the mean
  // over i = 0..tokens-1 is context0 + (tokens + 1) / 2.
  const double mean_positions = static_cast<double>(context0) + (static_cast<double>(tokens) + 1.0) / 2.0;
  return weight_bytes + kv_bytes_per_position * mean_positions;
}

nlohmann::json bench_report_json(const BenchReport& rep) {
  if (rep.baseline >= rep.models.size())
    fail("bench: baseline index {} is out of range for {} models", rep.baseline, rep.models.size());
  const ModelBenchResult& base = rep.models[rep.baseline];
  nlohmann::json models = nlohmann::json::array();
  for (const ModelBenchResult& m : rep.models) {
    nlohmann::json prefill = rate_json(rep.prefill_tokens, m.prefill);
    prefill["gflops"] = m.prefill.median() * m.prefill_flops_per_token / 1e9;
    nlohmann::json j = {
        {"model", m.model},
        {"path", m.path},
        {"description", m.description},
        {"backend", m.backend},
        {"file_bytes", m.file_bytes},
        {"peak_rss_bytes", m.peak_rss_bytes},
        {"rss_after_load_bytes", m.rss_after_load_bytes},
        {"load_seconds", m.load_seconds},
        {"thread_round_trip_ns_all", m.thread_round_trip_ns_all},
        {"weight_bytes_per_token", m.traffic.weight_bytes},
        {"kv_bytes_per_position", m.traffic.kv_bytes_per_position},
        {"prefill", prefill},
        {"decode_after_prompt",
         decode_json(rep.prefill_tokens, rep.decode_tokens, m.decode_after_prompt, m.traffic, rep.read_bandwidth_gbs,
                     rep.read_bandwidth_gbs_all, m.footprint_gbs_after_prompt_all, m.host_memory)},
        {"decode_empty", decode_json(0, rep.decode_tokens, m.decode_empty, m.traffic, rep.read_bandwidth_gbs,
                                     rep.read_bandwidth_gbs_all, m.footprint_gbs_empty_all, m.host_memory)},
        {"ratio_to_baseline",
         {{"prefill", ratio(m.prefill.median(), base.prefill.median())},
          {"decode_after_prompt", ratio(m.decode_after_prompt.median(), base.decode_after_prompt.median())},
          {"decode_empty", ratio(m.decode_empty.median(), base.decode_empty.median())},
          {"file_bytes", ratio(static_cast<double>(m.file_bytes), static_cast<double>(base.file_bytes))},
          {"peak_rss_bytes",
           ratio(static_cast<double>(m.peak_rss_bytes), static_cast<double>(base.peak_rss_bytes))}}},
    };
    if (!m.profile.is_null()) j["profile"] = m.profile;
    models.push_back(std::move(j));
  }
  return {{"cpu", rep.cpu},
          {"threads", rep.threads},
          {"openmp_wait", rep.openmp_wait},
          {"weight_memory", rep.weight_memory},
          {"prefill_tokens", rep.prefill_tokens},
          {"decode_tokens", rep.decode_tokens},
          {"repeats", rep.repeats},
          {"statistic", "median over repeats (tokens_per_s); best and all beside it"},
          {"method", rep.method},
          {"measured_read_bandwidth_gbs", rep.read_bandwidth_gbs},
          {"measured_read_bandwidth_gbs_all", rep.read_bandwidth_gbs_all},
          {"measured_thread_round_trip_ns_all", rep.thread_round_trip_ns_all},
          {"baseline", base.model},
          {"models", models}};
}

}  // namespace quarot
