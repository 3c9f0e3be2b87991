// The text transformations of lm-evaluation-harness's task definitions, reproduced exactly
// (Python string semantics included) so prompts match lm-eval byte for byte.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "eval/task.h"

namespace moeq {

// Python's str.strip() / str.rstrip(): removes the characters str.isspace() accepts
// (ASCII whitespace, \x1c-\x1f, U+0085, U+00A0 and the Unicode space separators).
std::string_view py_strip(std::string_view s);
std::string_view py_rstrip(std::string_view s);

// lm_eval/tasks/hellaswag/utils.py preprocess(): strip, " [title]" -> ". ", drop "[...]",
// then one pass of "  " -> " ".
std::string hellaswag_preprocess(std::string_view text);

// "Question: {q}\nAnswer:" (piqa, arc).
std::string question_answer_prompt(std::string_view question);

// super_glue/copa/utils.py: premise.strip()[:-1] + " because" / " therefore", and the choice
// with its first letter lower-cased, prefixed by " ".
std::string copa_context(std::string_view premise, std::string_view question);
std::string copa_choice(std::string_view choice);

// winogrande/preprocess_winogrande.py (partial scoring): context = sentence up to the first
// '_' with the option in its place; continuation = " " + the rest of the sentence, stripped.
Choice winogrande_choice(std::string_view sentence, std::string_view option);

// lambada_openai.yaml: context = every word but the last (split on ' '), continuation = " " + last.
Choice lambada_choice(std::string_view text);

// mmlu/default/_default_template_yaml and the per-subject description.
struct MmluQuestion {
  std::string question;
  std::vector<std::string> options;  // A..D
  int answer = 0;
};
std::string mmlu_description(std::string_view subject);  // "The following are ... about {subject}.\n\n"
std::string mmlu_doc_text(const MmluQuestion& q);         // "{q}\nA. ..\nB. ..\nC. ..\nD. ..\nAnswer:"
// The full lm-eval context: description, then each shot as doc_text + " " + letter + "\n\n",
// then the question's doc_text.
std::string mmlu_context(std::string_view subject, const std::vector<MmluQuestion>& shots,
                         const MmluQuestion& q);

}  // namespace moeq
