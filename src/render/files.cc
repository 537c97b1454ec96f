#include "render/files.h"

namespace adhoc::render {

namespace {
constexpr char kRawMarker[] = "\x01hcl:";
}

std::string JsonText(const nlohmann::json& value) { return value.dump(2) + "\n"; }

std::string RawHcl(const std::string& expression) { return kRawMarker + expression; }

std::string TfLiteral(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if ((text[i] == '$' || text[i] == '%') && i + 1 < text.size() && text[i + 1] == '{')
      out += text[i];
    out += text[i];
  }
  return out;
}

std::string Interp(const std::string& expression) { return "${" + expression + "}"; }

std::string HclString(const std::string& text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    // "$${" and "%%{" are escapes of the template language: copied as they are.
    if ((c == '$' || c == '%') && text.compare(i, 3, std::string(2, c) + "{") == 0) {
      out += text.substr(i, 3);
      i += 2;
      continue;
    }
    // An interpolation is code, not text: copied verbatim up to its closing brace.
    if (c == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      int depth = 0;
      bool in_string = false;
      size_t j = i + 1;
      for (; j < text.size(); ++j) {
        char d = text[j];
        if (in_string) {
          if (d == '\\')
            ++j;
          else if (d == '"')
            in_string = false;
          continue;
        }
        if (d == '"')
          in_string = true;
        else if (d == '{')
          ++depth;
        else if (d == '}' && --depth == 0)
          break;
      }
      out += text.substr(i, j - i + 1);
      i = j;
      continue;
    }
    switch (c) {
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
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
  return out + "\"";
}

std::string ToHcl(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::string: {
      const std::string& s = value.get_ref<const std::string&>();
      if (s.starts_with(kRawMarker)) return s.substr(sizeof(kRawMarker) - 1);
      return HclString(s);
    }
    case nlohmann::json::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < value.size(); ++i) out += (i ? ", " : "") + ToHcl(value[i]);
      return out + "]";
    }
    case nlohmann::json::value_t::object: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : value.items()) {
        out += (first ? "" : ", ") + HclString(k) + " = " + ToHcl(v);
        first = false;
      }
      return out + "}";
    }
    case nlohmann::json::value_t::null:
      return "null";
    default:
      return value.dump();
  }
}

}  // namespace adhoc::render
