// Task loaders and prompt texts against the real data files and lm-eval's task definitions.
#include <unistd.h>

#include <fstream>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <utf8proc.h>

#include "core/error.h"
#include "eval/mmlu.h"
#include "eval/task.h"
#include "eval/task_text.h"
#include "test_util.h"

namespace moeq {
namespace {

namespace fs = std::filesystem;

fs::path data_dir() { return testing::shared_dir() / "data/eval"; }

Task load(std::string_view name, int64_t limit = -1) { return load_task(name, {data_dir(), limit}); }

TEST(EvalText, PythonStripSemantics) {
  EXPECT_EQ(py_strip(" \t\n\x0b\x0c\r x y \xc2\xa0\xe3\x80\x80"), "x y");  // NBSP, ideographic space
  EXPECT_EQ(py_rstrip("  a  "), "  a");
  EXPECT_EQ(py_strip(" \xc3\xa9 "), "\xc3\xa9");  // é is not whitespace
  EXPECT_EQ(py_strip("   "), "");
}

// Every code point against CPython 3.11's [c for c in range(0x110000) if chr(c).isspace()].
TEST(EvalText, StripRemovesExactlyPythonsWhitespace) {
  const std::set<int32_t> python = {0x9,    0xa,    0xb,    0xc,    0xd,    0x1c,   0x1d,   0x1e,   0x1f,   0x20,
                                    0x85,   0xa0,   0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006,
                                    0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000};
  int32_t spaces = 0;
  for (int32_t c = 0; c < 0x110000; ++c) {
    if (c >= 0xd800 && c < 0xe000) continue;  // surrogates have no UTF-8 form
    utf8proc_uint8_t bytes[4];
    const std::string one(reinterpret_cast<const char*>(bytes), size_t(utf8proc_encode_char(c, bytes)));
    const bool stripped = py_strip("x" + one).size() == 1;
    EXPECT_EQ(stripped, python.count(c) == 1) << std::hex << c;
    spaces += stripped;
  }
  EXPECT_EQ(spaces, 29);
}

TEST(EvalText, HellaswagPreprocessIsLmEvals) {
  // Expected strings from lm_eval/tasks/hellaswag/utils.py preprocess() run on the same input:
  // " [title]" → ". ", brackets dropped, then ONE pass of "  " → " " (so 4 spaces become 2).
  EXPECT_EQ(hellaswag_preprocess("  Making a cake: [header] How to bake a cake [title] Mix the flour.   "
                                 "[step] Stir  well [x "),
            "Making a cake: How to bake a cake. Mix the flour.  Stir well [x");
}

TEST(EvalTasks, HellaswagRealLines) {
  Task task = load("hellaswag");
  ASSERT_EQ(task.docs.size(), 10042u);
  const Doc& first = task.docs[0];
  EXPECT_EQ(first.gold, 3);
  ASSERT_EQ(first.choices.size(), 4u);
  EXPECT_EQ(first.choices[0].context, "Roof shingle removal: A man is sitting on a roof. he");
  EXPECT_EQ(first.choices[3].continuation, " starts pulling up roofing on a roof.");
  // Line 21031 (doc 3505's context) holds "[www.kiddio.org]": preprocess drops it and the
  // double space it leaves (expected text from lm-eval's preprocess on that line).
  EXPECT_EQ(task.docs[3505].choices[0].context,
            "Family Life: How to entertain a toddler. Ask the toddler what he or she would like to do instead of "
            "doing what you would like to do.. Visit a site like to find loads of creative activities for "
            "toddlers and preschoolers.. Choose small, simple games like candy land or chutes and ladders.");
  // Line 24730 (doc 4121, ending 1) has a double space.
  EXPECT_EQ(task.docs[4121].choices[1].continuation,
            " Stop when you are not overly tired and give yourself a break before going to bed. Do not be "
            "embarrassed by physical exertion.");
}

TEST(EvalTasks, PiqaArcOpenbookqaPrompts) {
  Task piqa = load("piqa");
  ASSERT_EQ(piqa.docs.size(), 1838u);
  EXPECT_EQ(piqa.docs[0].choices[0].context,
            "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:");
  EXPECT_EQ(piqa.docs[1].choices[1].continuation, " finish, woodgrain with  bobby pin ");
  EXPECT_EQ(piqa.docs[0].gold, 0);
  EXPECT_EQ(piqa.docs[1].gold, 1);

  Task easy = load("arc_easy");
  ASSERT_EQ(easy.docs.size(), 2376u);
  EXPECT_EQ(easy.docs[1].choices[1].context,
            "Question: Which piece of safety equipment is used to keep mold spores from entering the respiratory "
            "system?\nAnswer:");
  EXPECT_EQ(easy.docs[1].choices[1].continuation, " breathing mask");
  EXPECT_EQ(easy.docs[1].gold, 1);
  size_t five = 0;
  for (const Doc& d : easy.docs) five += d.choices.size() == 5;
  EXPECT_EQ(five, 4u);  // four questions have an 'E' choice
  Task challenge = load("arc_challenge");
  EXPECT_EQ(challenge.docs.size(), 1172u);
  // Doc 44 labels its choices "1".."4" and answers "2".
  EXPECT_EQ(challenge.docs[44].gold, 1);
  EXPECT_EQ(challenge.docs[44].choices[1].continuation, " Kinetic energy increases and potential energy decreases.");

  Task obqa = load("openbookqa");
  ASSERT_EQ(obqa.docs.size(), 500u);
  EXPECT_EQ(obqa.docs[1].choices[0].context, "There is most likely going to be fog around:");  // no "Question:"
  EXPECT_EQ(obqa.docs[1].choices[0].continuation, " a marsh");
  EXPECT_EQ(obqa.docs[0].gold, 1);
}

TEST(EvalTasks, WinograndePartialScoring) {
  Task task = load("winogrande");
  ASSERT_EQ(task.docs.size(), 1267u);
  const Doc& d = task.docs[0];  // "Sarah was a much better surgeon than Maria so _ always got the easier cases."
  ASSERT_EQ(d.choices.size(), 2u);
  EXPECT_EQ(d.choices[0].context, "Sarah was a much better surgeon than Maria so Sarah");
  EXPECT_EQ(d.choices[1].context, "Sarah was a much better surgeon than Maria so Maria");
  EXPECT_EQ(d.choices[0].continuation, " always got the easier cases.");
  EXPECT_EQ(d.choices[1].continuation, " always got the easier cases.");
  EXPECT_EQ(d.gold, 1);  // answer "2"
}

TEST(EvalTasks, CopaConnectorAndLowercasedChoice) {
  Task task = load("copa");
  ASSERT_EQ(task.docs.size(), 100u);
  // {"premise": "The man turned on the faucet.", "choice1": "The toilet filled with water.",
  //  "choice2": "Water flowed from the spout.", "question": "effect", "label": 1}
  const Doc& d = task.docs[0];
  EXPECT_EQ(d.choices[0].context, "The man turned on the faucet therefore");
  // doc_to_choice's " " + the target delimiter " ": lm-eval really scores two spaces.
  EXPECT_EQ(d.choices[0].continuation, "  the toilet filled with water.");
  EXPECT_EQ(d.choices[1].continuation, "  water flowed from the spout.");
  EXPECT_EQ(d.gold, 1);
  EXPECT_EQ(copa_context("  It rained. ", "cause"), "It rained because");
}

TEST(EvalTasks, LambadaSplitsTheLastWord) {
  Task task = load("lambada_openai", 3);
  ASSERT_EQ(task.docs.size(), 3u);
  EXPECT_EQ(task.metric, TaskMetric::Lambada);
  const Choice& c = task.docs[0].choices.at(0);
  EXPECT_TRUE(c.context.ends_with("his mouth curved in a confident grin, I don't care about")) << c.context;
  EXPECT_EQ(c.continuation, " signs");
  EXPECT_EQ(task.docs[1].choices[0].continuation, " Shane");
  EXPECT_EQ(lambada_choice("a  b").context, "a ");  // Python split(' ') keeps the empty word
  // "lambada" is the same task under lm-eval's name.
  const Task alias = load("lambada", 3);
  EXPECT_EQ(alias.name, "lambada_openai");
  EXPECT_EQ(alias.docs[1].choices[0].continuation, " Shane");
}

TEST(EvalTasks, MmluFiveShotPromptIsLmEvals) {
  Task task = load("mmlu", 1);  // the first question of each of the 57 subjects
  ASSERT_EQ(task.docs.size(), 57u);
  const Doc& d = task.docs.back();  // world_religions, the last subject
  // Built by hand from lm-eval's mmlu templates: the description, the first 5 dev rows as
  // "{question.strip()}\nA. ..\nB. ..\nC. ..\nD. ..\nAnswer: {letter}\n\n", then the question.
  // The dev file has leading spaces (stripped), a quoted field with doubled quotes and CRLFs.
  const std::string expected =
      "The following are multiple choice questions (with answers) about world religions.\n\n"
      "What is the sign of the covenant for Jewish males?\nA. The rainbow\nB. Circumcision\nC. A son\n"
      "D. Bar mitzvah\nAnswer: B\n\n"
      "What is the Second Gem in Buddhism?\nA. The Dharma\nB. The Sangha\nC. The Buddha\nD. The Bodhisattva\n"
      "Answer: A\n\n"
      "In which dynasty was the \"Mandate of Heaven\" developed to legitimatize the new rulers?\nA. Shang\n"
      "B. Zhou\nC. Han\nD. Xia\nAnswer: B\n\n"
      "Which Japanese government promoted a kind of national cult based on the emperor and his associations "
      "with kami?\nA. Honen\nB. Tanaka\nC. Tokugawa\nD. Meiji\nAnswer: D\n\n"
      "How can the Upanishads be characterized?\nA. Ritual texts\nB. Philosophical texts\nC. Hymns\n"
      "D. Origin stories\nAnswer: B\n\n"
      "What can murtis be translated as?\nA. Offerings\nB. Prayers\nC. Apparitions\nD. Idols\nAnswer:";
  ASSERT_EQ(d.choices.size(), 4u);
  EXPECT_EQ(d.choices[0].context, expected);
  EXPECT_EQ(d.choices[2].continuation, " C");
  EXPECT_EQ(d.gold, 3);

  Task zero = load("mmlu_0shot", 1);
  EXPECT_EQ(zero.docs.back().choices[0].context,
            "The following are multiple choice questions (with answers) about world religions.\n\n"
            "What can murtis be translated as?\nA. Offerings\nB. Prayers\nC. Apparitions\nD. Idols\nAnswer:");
}

TEST(EvalTasks, MmluCounts) {
  EXPECT_EQ(mmlu_subjects(data_dir()).size(), 57u);
  EXPECT_EQ(load("mmlu_0shot").docs.size(), 14042u);
}

TEST(EvalTasks, DefaultAndLimit) {
  for (std::string_view name : default_tasks()) EXPECT_EQ(load(name, 2).docs.size(), 2u) << name;
  EXPECT_EQ(load("piqa", 0).docs.size(), 0u);
}

// A scratch data folder holding one file.
class BadData : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("moeq_eval_{}_{}", ::getpid(), ++counter_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& rel, const std::string& text) {
    fs::create_directories((dir_ / rel).parent_path());
    std::ofstream(dir_ / rel, std::ios::binary) << text;
  }
  // The message of the moeq::Error that loading `task` throws.
  std::string error(std::string_view task) {
    try {
      load_task(task, {dir_, -1});
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  }
  fs::path dir_;
  static inline int counter_ = 0;
};

TEST_F(BadData, UnknownTaskNamesTheKnownOnes) {
  std::string msg = error("piqa2");
  EXPECT_NE(msg.find("unknown task 'piqa2'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("arc_challenge"), std::string::npos) << msg;
  EXPECT_NE(msg.find("lambada for lambada_openai"), std::string::npos) << msg;  // the aliases too
}

TEST_F(BadData, MissingFileNamesIt) {
  std::string msg = error("winogrande");
  EXPECT_NE(msg.find("winogrande/dev.jsonl: cannot open"), std::string::npos) << msg;
}

TEST_F(BadData, EmptyFile) {
  write("copa/val.jsonl", "");
  EXPECT_NE(error("copa").find("copa/val.jsonl: evaluation data file is empty"), std::string::npos);
}

TEST_F(BadData, MalformedJsonNamesLine) {
  write("copa/val.jsonl", "{\"premise\": \"a.\"}\n{oops\n");
  EXPECT_NE(error("copa").find("copa/val.jsonl:2: line is not a JSON object"), std::string::npos) << error("copa");
}

TEST_F(BadData, MissingFieldNamesIt) {
  write("piqa/valid.jsonl", "{\"goal\": \"g\", \"sol1\": \"a\"}\n");
  write("piqa/valid-labels.lst", "0\n");
  EXPECT_NE(error("piqa").find("piqa/valid.jsonl:1: field 'sol2' is missing"), std::string::npos) << error("piqa");
}

TEST_F(BadData, LabelsMismatchAndRange) {
  write("piqa/valid.jsonl", "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\"}\n");
  write("piqa/valid-labels.lst", "0\n1\n");
  EXPECT_NE(error("piqa").find("2 labels for 1 records"), std::string::npos) << error("piqa");
  write("piqa/valid-labels.lst", "2\n");
  EXPECT_NE(error("piqa").find("valid-labels.lst:1: field 'label' points outside"), std::string::npos)
      << error("piqa");
}

TEST_F(BadData, ArcAnswerKeyWithoutChoice) {
  write("arc/ARC-Easy-Test.jsonl",
        R"({"question":{"stem":"s","choices":[{"text":"x","label":"A"}]},"answerKey":"B"})"
        "\n");
  EXPECT_NE(error("arc_easy").find("field 'answerKey' 'B' names no choice label"), std::string::npos)
      << error("arc_easy");
}

TEST_F(BadData, HellaswagNotSixLines) {
  write("hellaswag/hellaswag_val_full.txt", "ctx\n0\na\nb\nc\n");
  EXPECT_NE(error("hellaswag").find("5 lines is not a multiple of 6"), std::string::npos) << error("hellaswag");
}

TEST_F(BadData, MmluRecordShape) {
  write("mmlu/test/x_test.csv", "q,a,b,c,d,A\nq,a,b,c,E\n");
  EXPECT_NE(error("mmlu_0shot").find("x_test.csv: record 2 has 5 fields"), std::string::npos)
      << error("mmlu_0shot");
  write("mmlu/test/x_test.csv", "q,a,b,c,d,E\n");
  EXPECT_NE(error("mmlu_0shot").find("field 'answer' is 'E'"), std::string::npos) << error("mmlu_0shot");
  write("mmlu/test/x_test.csv", "q,a,b,c,d,A\n");
  EXPECT_NE(error("mmlu").find("mmlu/dev/x_dev.csv: cannot open"), std::string::npos) << error("mmlu");
}

}  // namespace
}  // namespace moeq
