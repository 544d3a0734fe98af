#include <bzlib.h>
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "eval/hellaswag.h"
#include "eval/perplexity.h"
#include "byte_tokenizer.h"
#include "test_support.h"

namespace quarot {
namespace {

const char* kTwoTasks =
    "Cooking: A man cracks an egg. he\n"
    "2\n"
    "flies away.\n"
    "sings loudly.\n"
    "pours it into a bowl.\n"
    "eats the shell.\n"
    "Running: A woman ties her shoes. she\n"
    "0\n"
    "starts to run.\n"
    "becomes a tree.\n"
    "reads a book upside down.\n"
    "melts.\n";

std::vector<uint8_t> bz2_compress(const std::string& text) {
  std::vector<char> out(text.size() * 2 + 600);
  unsigned int len = static_cast<unsigned int>(out.size());
  const int rc = BZ2_bzBuffToBuffCompress(out.data(), &len, const_cast<char*>(text.data()),
                                          static_cast<unsigned int>(text.size()), 9, 0, 0);
  EXPECT_EQ(rc, BZ_OK);
  return std::vector<uint8_t>(out.begin(), out.begin() + len);
}

TEST(Hellaswag, ReadsBz2TaskFile) {
  const std::string path = test::temp_dir() + "/tasks.txt.bz2";
  test::write_bytes(path, bz2_compress(kTwoTasks));
  const auto tasks = load_hellaswag(path);
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks[0].context, "Cooking: A man cracks an egg. he");
  EXPECT_EQ(tasks[0].label, 2);
  EXPECT_EQ(tasks[0].endings[2], "pours it into a bowl.");
  EXPECT_EQ(tasks[1].label, 0);
  EXPECT_EQ(tasks[1].endings[3], "melts.");
  // Two concatenated bzip2 streams read as one text.
  std::vector<uint8_t> twice = bz2_compress(std::string(kTwoTasks).substr(0, 100));
  const std::vector<uint8_t> second = bz2_compress(std::string(kTwoTasks).substr(100));
  twice.insert(twice.end(), second.begin(), second.end());
  const std::string path2 = test::temp_dir() + "/two_streams.bz2";
  test::write_bytes(path2, twice);
  EXPECT_EQ(read_bz2_file(path2), kTwoTasks);
}

TEST(Hellaswag, BadInputGivesClearErrors) {
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string text = kTwoTasks;
  // Truncated task (last ending missing).
  EXPECT_NE(message([&] { parse_hellaswag(text.substr(0, text.rfind("melts.")), "t.txt"); }).find("truncated"),
            std::string::npos);
  // Bad label.
  std::string bad = text;
  bad.replace(bad.find("\n2\n"), 3, "\n7\n");
  EXPECT_NE(message([&] { parse_hellaswag(bad, "t.txt"); }).find("t.txt: line 2: gold label"), std::string::npos);
  // Missing file, and a truncated / non-bzip2 file.
  EXPECT_NE(message([] { load_hellaswag("/nonexistent/hellaswag.txt.bz2"); }).find("no such file"), std::string::npos);
  const std::vector<uint8_t> full = bz2_compress(kTwoTasks);
  const std::string cut = test::temp_dir() + "/cut.bz2";
  test::write_bytes(cut, std::vector<uint8_t>(full.begin(), full.begin() + full.size() / 2));
  EXPECT_NE(message([&] { load_hellaswag(cut); }).find("truncated"), std::string::npos);
  const std::string plain = test::temp_dir() + "/plain.bz2";
  test::write_bytes(plain, std::vector<uint8_t>(text.begin(), text.end()));
  EXPECT_NE(message([&] { load_hellaswag(plain); }).find("not a bzip2 file"), std::string::npos);
  EXPECT_THROW(parse_hellaswag("", "empty.txt"), Error);
}

TEST(Hellaswag, TokenizesAsLmEval) {
  const ByteTokenizer tok(true);
  HellaswagTask task;
  task.context = "ab ";  // trailing space moves onto the continuation
  task.label = 0;
  task.endings = {"c", "de", "\xc3\xa9t\xc3\xa9", "f"};
  const HellaswagTaskTokens t = tokenize_hellaswag_task(tok, task);
  EXPECT_EQ(t.context, (std::vector<int32_t>{1, 'a', 'b'}));
  EXPECT_EQ(t.continuations[0], (std::vector<int32_t>{' ', ' ', 'c'}));
  // lm-eval normalizes by len(choice): the ending without the " " delimiter.
  EXPECT_EQ(t.ending_chars[0], 1);  // "c"
  EXPECT_EQ(t.ending_chars[1], 2);  // "de"
  EXPECT_EQ(t.ending_chars[2], 3);  // "été": 3 characters, 5 bytes
  EXPECT_EQ(t.ending_chars[3], 1);  // "f"
}

// Log-likelihoods for which dividing by len(" " + ending) and by len(ending) choose
// different endings: -3/1 = -3 < -5.5/2 = -2.75 picks "de", while the delimiter-counting
// normalization (-3/2 = -1.5 > -5.5/3) would pick "c".
TEST(Hellaswag, AccNormDividesByTheEndingWithoutItsDelimiter) {
  const ByteTokenizer tok(false);
  HellaswagTask task;
  task.context = "ab";
  task.endings = {"c", "de", "xyz", "uvw"};
  const HellaswagTaskTokens t = tokenize_hellaswag_task(tok, task);
  EXPECT_EQ(hellaswag_choice_normalized({-3.0, -5.5, -100.0, -100.0}, t.ending_chars), 1);
  EXPECT_EQ(hellaswag_choice({-3.0, -5.5, -100.0, -100.0}), 0);
}

TEST(Hellaswag, ScoresEqualADirectComputation) {
  const LlamaConfig c = tiny_test_config();
  const LlamaModel model(make_synthetic_model(c, 21), RuntimeRecipe{}, make_cpu_backend());
  const ByteTokenizer tok(false);
  const auto tasks = parse_hellaswag(kTwoTasks, "tasks");
  for (const HellaswagTask& task : tasks) {
    const HellaswagTaskTokens t = tokenize_hellaswag_task(tok, task);
    const std::array<double, 4> scores = score_hellaswag_endings(model, t);
    for (int e = 0; e < 4; ++e) {
      // Direct: the whole sequence context + " " + ending in one forward, summing
      // log p of the ending's tokens.
      const std::vector<int32_t> whole = tok.encode(task.context + " " + task.endings[e], false);
      KvCache cache = model.make_cache(static_cast<int64_t>(whole.size()));
      std::vector<float> logits;
      model.forward(whole.data(), static_cast<int64_t>(whole.size()), cache, logits, true);
      const int64_t first = static_cast<int64_t>(task.context.size());
      double direct = 0.0;
      for (int64_t p = first; p < static_cast<int64_t>(whole.size()); ++p)
        direct -= token_nll(logits.data() + (p - 1) * c.vocab_size, c.vocab_size, whole[p]);
      EXPECT_NEAR(scores[e], direct, 1e-3 * std::fabs(direct)) << "ending " << e;
    }
  }
}

TEST(Hellaswag, AccuracyAndStandardErrors) {
  EXPECT_EQ(hellaswag_choice({-5.0, -3.0, -4.0, -9.0}), 1);
  // Normalized: -6/3 = -2 beats -3/1.
  EXPECT_EQ(hellaswag_choice_normalized({-6.0, -3.0, -40.0, -90.0}, {3, 1, 4, 4}), 0);

  const LlamaConfig c = tiny_test_config();
  const LlamaModel model(make_synthetic_model(c, 21), RuntimeRecipe{}, make_cpu_backend());
  const ByteTokenizer tok(true);
  auto tasks = parse_hellaswag(kTwoTasks, "tasks");
  // Recompute the expected outcome from the per-task scores.
  int correct = 0, correct_norm = 0;
  for (const auto& task : tasks) {
    const auto t = tokenize_hellaswag_task(tok, task);
    const auto s = score_hellaswag_endings(model, t);
    correct += hellaswag_choice(s) == task.label;
    correct_norm += hellaswag_choice_normalized(s, t.ending_chars) == task.label;
  }
  HellaswagOptions opt;
  opt.progress = false;
  const HellaswagResult r = evaluate_hellaswag(model, tok, tasks, opt);
  EXPECT_EQ(r.tasks, 2);
  EXPECT_DOUBLE_EQ(r.acc, correct / 2.0);
  EXPECT_DOUBLE_EQ(r.acc_norm, correct_norm / 2.0);
  EXPECT_NEAR(r.acc_stderr, std::sqrt(r.acc * (1 - r.acc) / 1.0), 1e-12);
  opt.limit = 1;
  EXPECT_EQ(evaluate_hellaswag(model, tok, tasks, opt).tasks, 1);
}

}  // namespace
}  // namespace quarot
