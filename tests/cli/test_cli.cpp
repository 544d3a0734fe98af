// End-to-end checks of the `quarot` binary's behaviour on bad input: one clear
// error line on stderr, a non-zero exit code, never a crash (signals give other codes).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_support.h"

namespace {

struct CliRun {
  int code = -1;
  std::string out;  // stdout + stderr
};

CliRun run_cli(const std::string& args) {
  const std::string cmd = std::string(QUAROT_CLI_PATH) + " -q " + args + " 2>&1";
  CliRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

void expect_clean_error(const CliRun& r, const std::string& needle) {
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_LT(r.code, 128) << "crashed: " << r.out;
  EXPECT_NE(r.out.find(needle), std::string::npos) << "expected '" << needle << "' in: " << r.out;
}

std::string write_file(const std::string& name, const std::string& content) {
  const std::string p = quarot::test::temp_dir() + "/" + name;
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

// WikiText-2 test, as the data folder holds it, or "" when absent (tests skip).
std::string wikitext_test_path() {
  const char* env = std::getenv("QUAROT_DATA");
  const std::string dir = env != nullptr ? env : std::string(QUAROT_SOURCE_DIR) + "/../shared/data";
  const std::string p = dir + "/wikitext-2-raw-v1.test.txt";
  return std::filesystem::exists(p) ? p : "";
}

nlohmann::json json_of(const CliRun& r) {
  const size_t at = r.out.find('{');
  if (at == std::string::npos) return nullptr;
  return nlohmann::json::parse(r.out.substr(at), nullptr, /*allow_exceptions=*/false);
}

TEST(Cli, HelpWorksEverywhere) {
  for (const char* sub : {"", "ppl", "generate", "inspect", "bench", "quantize", "eval"}) {
    const CliRun r = run_cli(std::string(sub) + " --help");
    EXPECT_EQ(r.code, 0) << sub << ": " << r.out;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub;
  }
}

TEST(Cli, UnknownFlagsAndSubcommandsAreRejected) {
  expect_clean_error(run_cli("ppl --no-such-flag"), "no-such-flag");
  expect_clean_error(run_cli("frobnicate"), "frobnicate");
  expect_clean_error(run_cli(""), "subcommand");
  expect_clean_error(run_cli("ppl --seqlen -5"), "seqlen");
}

// Every numeric option has a meaningful range, checked at parse time with one short
// line naming the option and the range (not a type's 300-digit limits).
TEST(Cli, NumericOptionsHaveMeaningfulRanges) {
  const struct {
    const char* args;
    const char* message;
  } cases[] = {
      {"ppl --seqlen -5", "--seqlen: -5 is out of range 2..1048576"},
      {"ppl --seqlen 1", "--seqlen: 1 is out of range 2..1048576"},
      {"ppl --max-chunks -1", "--max-chunks: -1 is out of range"},
      {"ppl --batch 0", "--batch: 0 is out of range 1..1048576"},
      {"ppl --seqlen 99999999999999999999999", "--seqlen: 99999999999999999999999 is out of range"},
      {"ppl --seqlen abc", "--seqlen: 'abc' is not an integer"},
      {"generate -p hi -n 0", "--n-predict: 0 is out of range 1..1048576"},
      {"generate -p hi --temperature -1", "--temperature: -1 is out of range 0..100"},
      {"generate -p hi --top-p 0", "--top-p: 0 is out of range (0, 1]"},
      {"generate -p hi --top-p 1.5", "--top-p: 1.5 is out of range (0, 1]"},
      {"generate -p hi --top-k -2", "--top-k: -2 is out of range"},
      {"-t -3 ppl", "--threads: -3 is out of range 0..4096"},
      {"eval --limit -1", "--limit: -1 is out of range"},
      {"bench --repeats 0", "--repeats: 0 is out of range 1..1000"},
      {"bench --prefill 0", "--prefill: 0 is out of range 1..1048576"},
      {"quantize -o x.safetensors --seed-trials 0", "--seed-trials: seed trials 0 is out of range 1..1000"},
      {"quantize -o x.safetensors --kv-clip 0", "--kv-clip: KV cache clip ratio 0 is out of range (0, 1]"},
      {"quantize -o x.safetensors --a-clip 1.5", "--a-clip: activation clip ratio 1.5 is out of range 0..1"},
      {"quantize -o x.safetensors --percdamp 10", "--percdamp: GPTQ percdamp 10 is out of range (0, 10)"},
      {"quantize -o x.safetensors --w-group -64", "--w-group: weight group -64 is out of range 0..65536"},
      {"quantize -o x.safetensors --calib-windows 0", "--calib-windows: calibration windows 0 is out of range 1..100000"},
      {"quantize -o x.safetensors --weights claq --w-bits 1.5", "--w-bits: weight bit budget 1.5 is out of range 2..8"},
      {"quantize -o x.safetensors --weights claq --w-bits 8.5", "--w-bits: weight bit budget 8.5 is out of range 2..8"},
      {"quantize -o x.safetensors --weights claq --outliers 20%", "--outliers: outlier fraction 0.2 is out of range 0..0.1"},
      {"quantize -o x.safetensors --weights claq --outliers abc", "--outliers: outlier fraction 'abc' is not a number"},
      {"quantize -o x.safetensors --weights gptq --w-bits 2.5", "needs the CLAQ weight quantizer"},
      {"quantize -o x.safetensors --weights rtn --outliers 1%", "needs the CLAQ weight quantizer"},
      {"quantize -o x.safetensors --weights claq --scheme W3A16 --w-bits 2.12", "does not match the scheme"},
      {"quantize -o x.safetensors --rotate bogus", "--rotate: unknown rotation 'bogus' (expected hadamard, random or none)"},
  };
  for (const auto& c : cases) {
    const CliRun r = run_cli(c.args);
    expect_clean_error(r, c.message);
    EXPECT_EQ(r.out.find("1797693"), std::string::npos) << c.args << ": " << r.out;
    const std::string first_line = r.out.substr(0, r.out.find('\n'));
    EXPECT_LT(first_line.size(), 100u) << c.args << ": " << r.out;
  }
  // The flag is named once: the library's messages do not name CLI flags.
  EXPECT_EQ(run_cli("quantize -o x.safetensors --rotate bogus").out.find("--rotate: --rotate"), std::string::npos);
  // The ranges are shown in --help.
  EXPECT_NE(run_cli("ppl --help").out.find("2..1048576"), std::string::npos);
}

// A calibration file named like an evaluation split is refused before any loading, and
// the message names the flag that overrides it (the library's own message does not).
TEST(Cli, CalibrationOnATestSplitNamesTheOverride) {
  const std::string f = write_file("calib.test.txt", "Some calibration text.");
  expect_clean_error(run_cli("quantize -o x.safetensors --weights gptq --calib " + f),
                     "evaluation (test) split; pass --force-calib to override");
}

// More threads than processors are capped with a note (oversubscribed OpenMP barriers
// stall every decode step); a malformed QUAROT_THREADS is an error, not a silent 0.
TEST(Cli, ThreadCountsAreCheckedAndCapped) {
  CliRun r = run_cli("-t 4096 inspect -m no-such-model");
  EXPECT_NE(r.out.find("4096 threads requested, this machine has"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no-such-model"), std::string::npos) << r.out;
  ::setenv("QUAROT_THREADS", "abc", 1);
  r = run_cli("inspect -m no-such-model");
  ::unsetenv("QUAROT_THREADS");
  expect_clean_error(r, "QUAROT_THREADS='abc' is not a thread count in 0..4096");
}

// Commands that write a file check the output before any work: the model named here
// does not exist either, and the error is the output's, so nothing was loaded first.
TEST(Cli, UnwritableOutputFailsBeforeAnyWork) {
  const std::string dir = quarot::test::temp_dir();
  const std::string missing = dir + "/no/such/folder/out.quarot.safetensors";
  CliRun r = run_cli("quantize -m /no/such/model.gguf --weights gptq -o " + missing);
  expect_clean_error(r, missing + ": cannot write the output: folder " + dir + "/no/such/folder does not exist");
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  const std::string file = write_file("plain.txt", "x");
  expect_clean_error(run_cli("quantize -m /no/such/model.gguf -o " + file + "/out.safetensors"), "is not a folder");
  expect_clean_error(run_cli("quantize -m /no/such/model.gguf -o " + dir), "is a folder");
  expect_clean_error(run_cli("quantize --weights-from " + file + " -o " + missing), "does not exist");
  // Nothing is left behind by the check in a folder that can be written.
  const std::string ok_dir = quarot::test::temp_dir();
  expect_clean_error(run_cli("quantize -m /no/such/model.gguf -o " + ok_dir + "/out.safetensors"), "/no/such/model.gguf");
  EXPECT_TRUE(std::filesystem::is_empty(ok_dir));
}

// --device cuda needs a build with the CUDA backend; a build without says so before
// loading anything (the model named here does not exist).
TEST(Cli, DeviceOption) {
  expect_clean_error(run_cli("--device tpu inspect -m no-such-model"), "--device");
  expect_clean_error(run_cli("--device cuda --isa avx2 inspect -m no-such-model"), "does not apply to --device cuda");
#ifdef QUAROT_HAVE_CUDA
  GTEST_SKIP() << "this build has the CUDA backend";
#else
  const CliRun r = run_cli("--device cuda inspect -m no-such-model");
  expect_clean_error(r, "this build has no CUDA backend");
  EXPECT_EQ(r.out.find("no-such-model"), std::string::npos) << r.out;
#endif
}

// --fp32-attention reaches the CPU backend, whose name says so (bench and ppl JSON carry it).
TEST(Cli, Fp32AttentionOptionReachesTheBackend) {
  const std::string model = quarot::test::default_model_path();
  const std::string text = write_file("attn.txt", std::string(400, 'a') + " the end of a short text.\n");
  if (model.empty()) GTEST_SKIP() << "default model not fetched";
  for (const bool fp32 : {false, true}) {
    const CliRun r = run_cli(std::string(fp32 ? "--fp32-attention " : "") + "ppl -m " + model + " --text " + text +
                             " --seqlen 32 --max-chunks 1 --json");
    ASSERT_EQ(r.code, 0) << r.out;
    const nlohmann::json j = json_of(r);
    ASSERT_TRUE(j.is_object()) << r.out;
    const std::string backend = j["backend"];
    EXPECT_EQ(backend.find("fp32 attention") != std::string::npos, fp32) << backend;
  }
}

TEST(Cli, UnknownModelNameListsKnownOnes) {
  expect_clean_error(run_cli("inspect -m no-such-model"), "smollm2-135m");
}

TEST(Cli, CorruptModelFilesGiveOneLineErrors) {
  const std::string bad_magic = write_file("bad.gguf", std::string("NOTGGUF") + std::string(64, '\0'));
  CliRun r = run_cli("inspect -m " + bad_magic);
  expect_clean_error(r, bad_magic);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  const std::string truncated = write_file("trunc.gguf", std::string("GGUF\x03\x00\x00\x00", 8) + "\x05");
  expect_clean_error(run_cli("ppl -m " + truncated), truncated);
  const std::string empty_st = write_file("x.safetensors", "");
  expect_clean_error(run_cli("generate -m " + empty_st + " -p hi"), empty_st);
}

TEST(Cli, BadTextAndPromptInputs) {
  const std::string model = quarot::test::default_model_path();
  if (model.empty()) GTEST_SKIP() << "default model not fetched";
  const std::string empty = write_file("empty.txt", "");
  expect_clean_error(run_cli("ppl -m " + model + " --text " + empty), "empty");
  expect_clean_error(run_cli("ppl -m " + model + " --text /no/such/file.txt"), "/no/such/file.txt");
  const std::string short_text = write_file("short.txt", "Hello world.");
  expect_clean_error(run_cli("ppl -m " + model + " --text " + short_text), "fewer than one window");
  std::string long_prompt;
  for (int i = 0; i < 9000; ++i) long_prompt += " cat";
  expect_clean_error(run_cli("generate -m " + model + " -n 4 -p '" + long_prompt + "'"), "context");
  expect_clean_error(run_cli("quantize -m " + model + " --scheme W3Z9 -o /tmp/x.safetensors"), "W3Z9");
  expect_clean_error(run_cli("ppl -m " + model + " --protocol nonsense --text " + short_text), "nonsense");
  expect_clean_error(run_cli("quantize -m " + model + " --a-bits-at down -o /tmp/x.safetensors"), "SLOT=BITS");
  expect_clean_error(run_cli("quantize -m " + model + " --a-bits-at down=8x -o /tmp/x.safetensors"), "SLOT=BITS");
  expect_clean_error(run_cli("quantize -m " + model + " --a-bits-at lm_head=8 -o /tmp/x.safetensors"), "lm_head");
  expect_clean_error(run_cli("quantize -m " + model + " --weights-from " + model + " -o /tmp/x.safetensors"),
                     "not a quarot quantized model");
}

// --tokens-out writes the token stream the windows are cut from, so another engine
// can score exactly the same windows: as many ids as the run tokenized, each in the
// vocabulary, and the window length the run used.
TEST(Cli, PplWritesTheTokenStream) {
  const std::string model = quarot::test::default_model_path();
  if (model.empty()) GTEST_SKIP() << "default model not fetched";
  std::string words;
  for (int i = 0; i < 40; ++i) words += "The quick brown fox jumps over the lazy dog. ";
  const std::string text = write_file("fox.txt", words);
  const std::string out = quarot::test::temp_dir() + "/fox_tokens.json";
  const CliRun r = run_cli("ppl -m " + model + " --text " + text + " --seqlen 64 --max-chunks 2 --json --tokens-out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json result = json_of(r);
  std::ifstream f(out);
  ASSERT_TRUE(f.good()) << out;
  const nlohmann::json t = nlohmann::json::parse(f);
  EXPECT_EQ(t.at("seqlen"), 64);
  EXPECT_EQ(t.at("ids").size(), result.at("tokens").get<size_t>());
  EXPECT_GE(t.at("ids").size(), 2u * 64u);
  for (const auto& id : t.at("ids")) {
    EXPECT_GE(id.get<int>(), 0);
    EXPECT_LT(id.get<int>(), 49152);
  }
}

// --parallel-tasks: windows one per thread or one at a time give the same numbers
// (eval/task_runner.h), and the JSON says which ran; a bad value is one clean line.
TEST(Cli, PplParallelTasksGiveTheSameResult) {
  expect_clean_error(run_cli("ppl --parallel-tasks maybe"), "--parallel-tasks");
  const std::string model = quarot::test::default_model_path();
  if (model.empty()) GTEST_SKIP() << "default model not fetched";
  std::string words;
  for (int i = 0; i < 40; ++i) words += "The quick brown fox jumps over the lazy dog. ";
  const std::string text = write_file("fox_parallel.txt", words);
  const std::string args = " ppl -m " + model + " --text " + text + " --seqlen 64 --max-chunks 3 --json";
  const CliRun serial = run_cli("-t 2" + args + " --parallel-tasks off");
  const CliRun concurrent = run_cli("-t 2" + args + " --parallel-tasks on");
  ASSERT_EQ(serial.code, 0) << serial.out;
  ASSERT_EQ(concurrent.code, 0) << concurrent.out;
  const nlohmann::json a = json_of(serial), b = json_of(concurrent);
  EXPECT_EQ(a.at("parallel_tasks"), false);
  EXPECT_EQ(b.at("parallel_tasks"), true);
  EXPECT_EQ(a.at("chunks"), 3);
  EXPECT_EQ(a.at("ppl").get<double>(), b.at("ppl").get<double>());
  EXPECT_EQ(a.at("nll").get<double>(), b.at("nll").get<double>());
}

// stdout and stderr into one pipe (block-buffered stdout): the generated text still
// ends with a newline before the timing line.
TEST(Cli, GenerateEndsTheTextWithANewline) {
  const std::string model = quarot::test::default_model_path();
  if (model.empty()) GTEST_SKIP() << "default model not fetched";
  const CliRun r = run_cli("generate -m " + model + " -p 'The capital of France is' -n 4");
  EXPECT_EQ(r.code, 0) << r.out;
  const size_t timing = r.out.rfind("[");
  ASSERT_NE(timing, std::string::npos) << r.out;
  ASSERT_NE(r.out.find("prompt tokens at", timing), std::string::npos) << r.out;
  ASSERT_GT(timing, 0u);
  EXPECT_EQ(r.out[timing - 1], '\n') << r.out;
  EXPECT_EQ(r.out.rfind("The capital of France is", 0), 0u) << r.out;
}

// llama-perplexity's rules on the default model (no BOS: its vocabulary does not add
// one). Reference: llama.cpp's llama-perplexity -c 512 --chunks 40, 2 threads, on an
// F32 GGUF made from the default model: 22.9387 (issue 11); the bound is 0.02%.
TEST(CliSlow, LlamaCppProtocolReproducesLlamaPerplexity) {
  const std::string model = quarot::test::default_model_path();
  const std::string text = wikitext_test_path();
  if (model.empty() || text.empty()) GTEST_SKIP() << "default model or WikiText-2 not present";
  const CliRun r = run_cli("-t 2 ppl -m " + model + " --text " + text + " --protocol llama.cpp --max-chunks 40 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const nlohmann::json j = json_of(r);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["bos"], false);
  EXPECT_EQ(j["chunks"], 40);
  EXPECT_EQ(j["scored_tokens"], 40 * 255);
  EXPECT_NEAR(j["ppl"].get<double>(), 22.9387, 22.9387 * 2e-4) << r.out;
}

// inspect on a quantized file: a summary a person reads, not the raw metadata (the
// rotation matrices alone are tens of KB); --json gives the whole metadata.
TEST(Cli, InspectSummarizesAQuantizedFile) {
  const std::string model = quarot::test::default_model_path();
  if (model.empty()) GTEST_SKIP() << "default model not fetched";
  const std::string out = quarot::test::temp_dir() + "/rtn.quarot.safetensors";
  const CliRun q = run_cli("quantize -m " + model + " --scheme W4A4KV4 --weights rtn --no-clip-search -o " + out);
  ASSERT_EQ(q.code, 0) << q.out;
  const CliRun r = run_cli("inspect -m " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_LT(r.out.size(), 4000u) << r.out;
  EXPECT_EQ(r.out.find("\"m\""), std::string::npos) << r.out;
  for (const std::string& want : std::vector<std::string>{"scheme       W4A4KV4, weights by rtn",
                           "wq wk wv wo w_gate w_up w_down: 4-bit symmetric, per output channel",
                           "lm_head: FP", "activations  4-bit symmetric, per token, clip 0.9",
                           "KV cache     K 4-bit asymmetric, per head, clip 0.95", "rotation     hadamard, seed 0",
                           "fallbacks    ", "calibration  none", "attention", "mlp", "embeddings", "int codes",
                           "x the source " + model})
    EXPECT_NE(r.out.find(want), std::string::npos) << "missing '" << want << "' in:\n" << r.out;
  const CliRun full = run_cli("inspect --json -m " + out);
  ASSERT_EQ(full.code, 0) << full.out;
  const nlohmann::json j = json_of(full);
  ASSERT_TRUE(j.is_object()) << full.out.substr(0, 500);
  EXPECT_EQ(j["quantization"]["scheme"], "W4A4KV4");
  EXPECT_TRUE(j["quantization"]["recipe"]["down_proj_input"].contains("m"));
  EXPECT_EQ(j["quantization"]["tensors"].size(), 7u * 30u);
}

TEST(Cli, GenerateIsDeterministicForASeed) {
  const std::string model = quarot::test::default_model_path();
  if (model.empty()) GTEST_SKIP() << "default model not fetched";
  const std::string args = "generate -m " + model + " -p 'Once upon a time' -n 8 --temperature 0.8 --seed 7 --json";
  const CliRun a = run_cli(args), b = run_cli(args);
  EXPECT_EQ(a.code, 0) << a.out;
  EXPECT_EQ(b.code, 0) << b.out;
  // Speeds differ between runs; the text and token ids must not. Both outputs must
  // hold the JSON part, or two failed runs would compare equal.
  const size_t at_a = a.out.find("\"prompt\""), at_b = b.out.find("\"prompt\"");
  ASSERT_NE(at_a, std::string::npos) << a.out;
  ASSERT_NE(at_b, std::string::npos) << b.out;
  EXPECT_EQ(a.out.substr(at_a), b.out.substr(at_b));
  EXPECT_NE(a.out.find("\"tokens\""), std::string::npos) << a.out;
  EXPECT_NE(a.out.find("\"generated_tokens\": 8"), std::string::npos) << a.out;
}

}  // namespace
