// End-to-end checks of the `quarot` binary's behaviour on bad input: one clear
// error line on stderr, a non-zero exit code, never a crash (signals give other codes).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <string>

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
