#include "render/yaml.h"

#include <cctype>

namespace adhoc::render {

namespace {

bool LooksLikeOtherType(const std::string& s) {
  static const char* kWords[] = {"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"};
  std::string lower;
  for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* w : kWords)
    if (lower == w) return true;
  // Numbers (ints, floats, hex, octal, .inf), and anything starting like one.
  if (!s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '.' ||
                     ((s[0] == '-' || s[0] == '+') && s.size() > 1 &&
                      (std::isdigit(static_cast<unsigned char>(s[1])) || s[1] == '.'))))
    return true;
  return false;
}

bool NeedsQuotes(const std::string& s) {
  if (s.empty() || LooksLikeOtherType(s)) return true;
  if (s.front() == ' ' || s.back() == ' ') return true;
  static const std::string kFirst = "-?:,[]{}#&*!|>'\"%@`";
  if (kFirst.find(s[0]) != std::string::npos) return true;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return true;
    if (s[i] == ':' && (i + 1 == s.size() || s[i + 1] == ' ')) return true;
    if (s[i] == '#' && i > 0 && s[i - 1] == ' ') return true;
    if (s[i] == '$' && i + 1 < s.size() && s[i + 1] == '{') return true;
  }
  return false;
}

std::string Quoted(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static const char kHex[] = "0123456789abcdef";
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

bool IsScalar(const ojson& v) { return !v.is_object() && !v.is_array(); }
bool IsEmptyCollection(const ojson& v) { return (v.is_object() || v.is_array()) && v.empty(); }

std::string Scalar(const ojson& v) {
  if (v.is_string()) return YamlScalar(v.get<std::string>());
  if (v.is_null()) return "null";
  if (v.is_object()) return "{}";
  if (v.is_array()) return "[]";
  return v.dump();
}

// A multi-line string without trailing spaces or control characters: a literal block.
bool AsBlock(const ojson& v) {
  if (!v.is_string()) return false;
  const std::string& s = v.get_ref<const std::string&>();
  if (s.find('\n') == std::string::npos || s.front() == ' ' || s.front() == '\n') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c < 0x20 && c != '\n') || c == 0x7f) return false;
    if (s[i] == '\n' && i > 0 && s[i - 1] == ' ') return false;
  }
  return true;
}

void Block(const std::string& s, int indent, std::string* out) {
  bool final_newline = s.back() == '\n';
  *out += final_newline ? "|\n" : "|-\n";
  std::string pad(indent, ' ');
  size_t at = 0;
  std::string body = final_newline ? s.substr(0, s.size() - 1) : s;
  while (at <= body.size()) {
    size_t end = body.find('\n', at);
    if (end == std::string::npos) end = body.size();
    std::string line = body.substr(at, end - at);
    *out += line.empty() ? "\n" : pad + line + "\n";
    at = end + 1;
  }
}

void Emit(const ojson& v, int indent, std::string* out);

// The value after "key:" or "- ".
void EmitValue(const ojson& v, int indent, std::string* out, bool after_dash) {
  if (IsScalar(v) || IsEmptyCollection(v)) {
    if (AsBlock(v)) {
      *out += " ";
      Block(v.get<std::string>(), indent + 2, out);
    } else {
      *out += " " + Scalar(v) + "\n";
    }
    return;
  }
  if (after_dash && v.is_object()) {
    // "- key: value" with the rest of the mapping aligned under the first key.
    bool first = true;
    for (const auto& [k, item] : v.items()) {
      if (!first) *out += std::string(indent + 2, ' ');
      *out += (first ? " " : "") + YamlScalar(k) + ":";
      EmitValue(item, indent + 2, out, false);
      first = false;
    }
    return;
  }
  *out += "\n";
  Emit(v, v.is_array() && !after_dash ? indent : indent + 2, out);
}

void Emit(const ojson& v, int indent, std::string* out) {
  std::string pad(indent, ' ');
  if (v.is_object()) {
    for (const auto& [k, item] : v.items()) {
      *out += pad + YamlScalar(k) + ":";
      EmitValue(item, indent, out, false);
    }
  } else if (v.is_array()) {
    for (const ojson& item : v) {
      *out += pad + "-";
      EmitValue(item, indent, out, true);
    }
  } else {
    *out += pad + Scalar(v) + "\n";
  }
}

}  // namespace

std::string YamlScalar(const std::string& text) { return NeedsQuotes(text) ? Quoted(text) : text; }

std::string ToYaml(const ojson& value) {
  std::string out;
  Emit(value, 0, &out);
  return out;
}

}  // namespace adhoc::render
