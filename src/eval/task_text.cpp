#include "eval/task_text.h"

#include <array>
#include <cstdint>

#include <fmt/format.h>
#include <utf8proc.h>

#include "core/error.h"

namespace moeq {
namespace {

// Python's str.isspace(): bidirectional class WS, B or S, or general category Zs (CPython's
// makeunicodedata.py), from utf8proc's Unicode tables.
bool is_py_space(int32_t c) {
  if (c < 0 || !utf8proc_codepoint_valid(c)) return false;
  const utf8proc_property_t* p = utf8proc_get_property(c);
  return p->category == UTF8PROC_CATEGORY_ZS || p->bidi_class == UTF8PROC_BIDI_CLASS_WS ||
         p->bidi_class == UTF8PROC_BIDI_CLASS_B || p->bidi_class == UTF8PROC_BIDI_CLASS_S;
}

// Decodes the code point starting at s[i]; returns its length in bytes (1 for invalid bytes,
// which then never count as whitespace).
size_t decode_at(std::string_view s, size_t i, int32_t* cp) {
  utf8proc_int32_t c = -1;
  auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                            utf8proc_ssize_t(s.size() - i), &c);
  if (n <= 0) {
    *cp = -1;
    return 1;
  }
  *cp = c;
  return size_t(n);
}

// Start of the last code point of s (s non-empty).
size_t last_code_point(std::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (uint8_t(s[i]) & 0xc0) == 0x80 && s.size() - i < 4) --i;
  return i;
}

std::string_view lstrip(std::string_view s) {
  while (!s.empty()) {
    int32_t c;
    size_t n = decode_at(s, 0, &c);
    if (!is_py_space(c)) break;
    s.remove_prefix(n);
  }
  return s;
}

// Python's str.replace(from, to): one left-to-right pass over non-overlapping matches.
std::string replace_all(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string_view::npos; pos = hit + from.size()) {
    out.append(s.substr(pos, hit - pos)).append(to);
  }
  out.append(s.substr(pos));
  return out;
}

// re.sub(r"\[.*?\]", "", s): each '[' with a later ']' on the same line is removed with all
// between; a '[' without one stays.
std::string drop_bracketed(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '[') {
      size_t close = s.find_first_of("]\n", i + 1);
      if (close != std::string_view::npos && s[close] == ']') {
        i = close;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

std::string_view py_rstrip(std::string_view s) {
  while (!s.empty()) {
    size_t start = last_code_point(s);
    int32_t c;
    decode_at(s, start, &c);
    if (!is_py_space(c)) break;
    s.remove_suffix(s.size() - start);
  }
  return s;
}

std::string_view py_strip(std::string_view s) { return py_rstrip(lstrip(s)); }

std::string hellaswag_preprocess(std::string_view text) {
  std::string s = replace_all(py_strip(text), " [title]", ". ");
  return replace_all(drop_bracketed(s), "  ", " ");
}

std::string question_answer_prompt(std::string_view question) {
  return fmt::format("Question: {}\nAnswer:", question);
}

std::string copa_context(std::string_view premise, std::string_view question) {
  std::string_view connector;
  if (question == "cause") connector = "because";
  else if (question == "effect") connector = "therefore";
  else fail("copa question '{}' is neither 'cause' nor 'effect'", question);
  std::string_view p = py_strip(premise);
  if (!p.empty()) p.remove_suffix(p.size() - last_code_point(p));  // drops the final period
  return fmt::format("{} {}", p, connector);
}

std::string copa_choice(std::string_view choice) {
  if (choice.empty()) return " ";
  int32_t c;
  size_t n = decode_at(choice, 0, &c);
  std::array<utf8proc_uint8_t, 4> buf{};
  auto len = utf8proc_encode_char(c < 0 ? c : utf8proc_tolower(c), buf.data());
  std::string first = c < 0 ? std::string(choice.substr(0, n))
                            : std::string(reinterpret_cast<const char*>(buf.data()), size_t(len));
  return fmt::format(" {}{}", first, choice.substr(n));
}

Choice winogrande_choice(std::string_view sentence, std::string_view option) {
  size_t blank = sentence.find('_');
  if (blank == std::string_view::npos) fail("winogrande sentence has no '_': {}", sentence);
  return {fmt::format("{}{}", sentence.substr(0, blank), option),
          fmt::format(" {}", py_strip(sentence.substr(blank + 1)))};
}

Choice lambada_choice(std::string_view text) {
  size_t space = text.rfind(' ');
  if (space == std::string_view::npos) return {"", fmt::format(" {}", text)};
  return {std::string(text.substr(0, space)), fmt::format(" {}", text.substr(space + 1))};
}

std::string mmlu_description(std::string_view subject) {
  return fmt::format("The following are multiple choice questions (with answers) about {}.\n\n",
                     replace_all(subject, "_", " "));
}

std::string mmlu_doc_text(const MmluQuestion& q) {
  return fmt::format("{}\nA. {}\nB. {}\nC. {}\nD. {}\nAnswer:", py_strip(q.question), q.options.at(0),
                     q.options.at(1), q.options.at(2), q.options.at(3));
}

std::string mmlu_context(std::string_view subject, const std::vector<MmluQuestion>& shots,
                         const MmluQuestion& q) {
  std::string out = mmlu_description(subject);
  for (const MmluQuestion& shot : shots) {
    out += mmlu_doc_text(shot);
    out += fmt::format(" {}\n\n", char('A' + shot.answer));
  }
  return out + mmlu_doc_text(q);
}

}  // namespace moeq
