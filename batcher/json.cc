#include "batcher/json.h"

#include <array>
#include <cstdint>

#include "core/util/encoding.h"

namespace batcher::json {

namespace {

// Documents up to this size reuse one parser per thread; larger ones get their own, so one big
// request does not pin a large parser buffer for the life of the process.
constexpr size_t kReusableParserBytes = size_t{1} << 20;

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

// The four hex digits of a \u escape at text[i].
bool readHex4(std::string_view text, size_t i, uint32_t& value) {
  if (i + 4 > text.size()) return false;
  value = 0;
  for (size_t k = i; k < i + 4; ++k) {
    const char c = text[k];
    uint32_t digit = 0;
    if (isDigit(c)) {
      digit = static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<uint32_t>(c - 'A' + 10);
    } else {
      return false;
    }
    value = value << 4 | digit;
  }
  return true;
}

void appendUtf8(std::string& out, uint32_t rune) {
  if (rune < 0x80) {
    out += static_cast<char>(rune);
  } else if (rune < 0x800) {
    out += static_cast<char>(0xc0 | (rune >> 6));
    out += static_cast<char>(0x80 | (rune & 0x3f));
  } else if (rune < 0x10000) {
    out += static_cast<char>(0xe0 | (rune >> 12));
    out += static_cast<char>(0x80 | ((rune >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (rune & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (rune >> 18));
    out += static_cast<char>(0x80 | ((rune >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((rune >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (rune & 0x3f));
  }
}

char simpleEscape(char c) {
  switch (c) {
    case '"':
    case '\\':
    case '/':
      return c;
    case 'b':
      return '\b';
    case 'f':
      return '\f';
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    default:
      return 0;
  }
}

simdjson::error_code readScalar(od::value& value, od::json_type type, std::string_view& text) {
  text = trim(value.raw_json_token());
  switch (type) {
    case od::json_type::string: {
      // Not get_string(), which refuses lone surrogates that Go accepts: the string is stepped
      // over raw and its text checked here (it is spliced unchanged, so its decoded value is not
      // needed). It must be stepped over: the reader's own skip takes a string followed by ':'
      // for a key and would accept ["k":1].
      od::raw_json_string raw;
      auto error = value.get_raw_json_string().get(raw);
      if (error) return error;
      return unquote(text) ? simdjson::SUCCESS : simdjson::STRING_ERROR;
    }
    case od::json_type::number:
      return isNumber(text) ? simdjson::SUCCESS : simdjson::NUMBER_ERROR;
    case od::json_type::boolean:
      return text == "true" || text == "false" ? simdjson::SUCCESS : simdjson::T_ATOM_ERROR;
    case od::json_type::null:
      return text == "null" ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    default:
      return simdjson::INCORRECT_TYPE;
  }
}

// The text from `start` to the reader's current position (the token after the value).
simdjson::error_code spanTo(od::value& value, const char* start, std::string_view& text) {
  const char* end = nullptr;
  auto error = value.current_location().get(end);
  if (error) return error;
  text = trim(std::string_view(start, static_cast<size_t>(end - start)));
  return simdjson::SUCCESS;
}

// Go's strconv.Quote of one byte taken as a rune, between single quotes (scanner's quoteChar).
std::string quoteChar(unsigned char c) {
  if (c == '\'') return "'\\''";
  if (c == '"') return "'\"'";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "'";
  switch (c) {
    case '\a':
      out += "\\a";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\v':
      out += "\\v";
      break;
    case '\\':
      out += "\\\\";
      break;
    default:
      if (c < 0x20 || c == 0x7f) {
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
      } else if (c < 0x80) {
        out += static_cast<char>(c);
      } else if (c < 0xa1 || c == 0xad) {
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
      } else {
        out += static_cast<char>(0xc0 | (c >> 6));
        out += static_cast<char>(0x80 | (c & 0x3f));
      }
  }
  out += '\'';
  return out;
}

// A transcription of the state machine in Go's encoding/json/scanner.go, used only to word
// error messages exactly as upstream clients see them.
class GoScanner {
 public:
  std::string check(std::string_view text) {
    for (char ch : text) {
      if (!step(static_cast<unsigned char>(ch))) return error_;
    }
    if (endTop_) return "";
    if (step(' ') && endTop_) return "";
    return error_.empty() ? "unexpected end of JSON input" : error_;
  }

 private:
  enum class State {
    BeginValueOrEmpty,
    BeginValue,
    BeginStringOrEmpty,
    BeginString,
    EndValue,
    EndTop,
    InString,
    InStringEsc,
    InStringEscU,
    InStringEscU1,
    InStringEscU12,
    InStringEscU123,
    Neg,
    One,
    Zero,
    Dot,
    Dot0,
    E,
    ESign,
    E0,
    T,
    Tr,
    Tru,
    F,
    Fa,
    Fal,
    Fals,
    N,
    Nu,
    Nul,
  };
  enum class Parse { ObjectKey, ObjectValue, ArrayValue };

  static bool isHex(unsigned char c) {
    return isDigit(static_cast<char>(c)) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  }

  bool fail(unsigned char c, std::string_view context) {
    error_ = "invalid character " + quoteChar(c) + " " + std::string(context);
    return false;
  }

  bool literal(unsigned char c, char expected, State next, std::string_view context) {
    if (c != static_cast<unsigned char>(expected)) return fail(c, context);
    state_ = next;
    return true;
  }

  void pop() {
    stack_.pop_back();
    state_ = stack_.empty() ? State::EndTop : State::EndValue;
    endTop_ = stack_.empty();
  }

  bool beginValue(unsigned char c) {
    switch (c) {
      case '{':
        state_ = State::BeginStringOrEmpty;
        stack_.push_back(Parse::ObjectKey);
        return true;
      case '[':
        state_ = State::BeginValueOrEmpty;
        stack_.push_back(Parse::ArrayValue);
        return true;
      case '"':
        state_ = State::InString;
        return true;
      case '-':
        state_ = State::Neg;
        return true;
      case '0':
        state_ = State::Zero;
        return true;
      case 't':
        state_ = State::T;
        return true;
      case 'f':
        state_ = State::F;
        return true;
      case 'n':
        state_ = State::N;
        return true;
      default:
        if (c >= '1' && c <= '9') {
          state_ = State::One;
          return true;
        }
        return fail(c, "looking for beginning of value");
    }
  }

  bool endValue(unsigned char c) {
    if (stack_.empty()) {
      state_ = State::EndTop;
      endTop_ = true;
      return endTop(c);
    }
    if (isSpace(static_cast<char>(c))) {
      state_ = State::EndValue;
      return true;
    }
    switch (stack_.back()) {
      case Parse::ObjectKey:
        if (c != ':') return fail(c, "after object key");
        stack_.back() = Parse::ObjectValue;
        state_ = State::BeginValue;
        return true;
      case Parse::ObjectValue:
        if (c == ',') {
          stack_.back() = Parse::ObjectKey;
          state_ = State::BeginString;
          return true;
        }
        if (c != '}') return fail(c, "after object key:value pair");
        pop();
        return true;
      case Parse::ArrayValue:
        if (c == ',') {
          state_ = State::BeginValue;
          return true;
        }
        if (c != ']') return fail(c, "after array element");
        pop();
        return true;
    }
    return false;
  }

  bool endTop(unsigned char c) {
    if (!isSpace(static_cast<char>(c))) return fail(c, "after top-level value");
    return true;
  }

  bool number(unsigned char c, State next) {
    if (isDigit(static_cast<char>(c))) {
      state_ = next;
      return true;
    }
    return false;
  }

  bool step(unsigned char c) {
    const bool space = isSpace(static_cast<char>(c));
    switch (state_) {
      case State::BeginValueOrEmpty:
        if (space) return true;
        if (c == ']') return endValue(c);
        return beginValue(c);
      case State::BeginValue:
        return space || beginValue(c);
      case State::BeginStringOrEmpty:
        if (space) return true;
        if (c == '}') {
          stack_.back() = Parse::ObjectValue;
          return endValue(c);
        }
        [[fallthrough]];
      case State::BeginString:
        if (space) return true;
        if (c != '"') return fail(c, "looking for beginning of object key string");
        state_ = State::InString;
        return true;
      case State::EndValue:
        return endValue(c);
      case State::EndTop:
        return endTop(c);
      case State::InString:
        if (c == '"') {
          state_ = State::EndValue;
        } else if (c == '\\') {
          state_ = State::InStringEsc;
        } else if (c < 0x20) {
          return fail(c, "in string literal");
        }
        return true;
      case State::InStringEsc:
        switch (c) {
          case 'b':
          case 'f':
          case 'n':
          case 'r':
          case 't':
          case '\\':
          case '/':
          case '"':
            state_ = State::InString;
            return true;
          case 'u':
            state_ = State::InStringEscU;
            return true;
          default:
            return fail(c, "in string escape code");
        }
      case State::InStringEscU:
      case State::InStringEscU1:
      case State::InStringEscU12:
      case State::InStringEscU123: {
        if (!isHex(c)) return fail(c, "in \\u hexadecimal character escape");
        static constexpr std::array<State, 4> kNext{State::InStringEscU1, State::InStringEscU12,
                                                    State::InStringEscU123, State::InString};
        state_ = kNext[static_cast<size_t>(state_) - static_cast<size_t>(State::InStringEscU)];
        return true;
      }
      case State::Neg:
        if (c == '0') {
          state_ = State::Zero;
          return true;
        }
        return number(c, State::One) || fail(c, "in numeric literal");
      case State::One:
        if (number(c, State::One)) return true;
        [[fallthrough]];
      case State::Zero:
        if (c == '.') {
          state_ = State::Dot;
          return true;
        }
        if (c == 'e' || c == 'E') {
          state_ = State::E;
          return true;
        }
        return endValue(c);
      case State::Dot:
        return number(c, State::Dot0) || fail(c, "after decimal point in numeric literal");
      case State::Dot0:
        if (number(c, State::Dot0)) return true;
        if (c == 'e' || c == 'E') {
          state_ = State::E;
          return true;
        }
        return endValue(c);
      case State::E:
        if (c == '+' || c == '-') {
          state_ = State::ESign;
          return true;
        }
        [[fallthrough]];
      case State::ESign:
        return number(c, State::E0) || fail(c, "in exponent of numeric literal");
      case State::E0:
        return number(c, State::E0) || endValue(c);
      case State::T:
        return literal(c, 'r', State::Tr, "in literal true (expecting 'r')");
      case State::Tr:
        return literal(c, 'u', State::Tru, "in literal true (expecting 'u')");
      case State::Tru:
        return literal(c, 'e', State::EndValue, "in literal true (expecting 'e')");
      case State::F:
        return literal(c, 'a', State::Fa, "in literal false (expecting 'a')");
      case State::Fa:
        return literal(c, 'l', State::Fal, "in literal false (expecting 'l')");
      case State::Fal:
        return literal(c, 's', State::Fals, "in literal false (expecting 's')");
      case State::Fals:
        return literal(c, 'e', State::EndValue, "in literal false (expecting 'e')");
      case State::N:
        return literal(c, 'u', State::Nu, "in literal null (expecting 'u')");
      case State::Nu:
        return literal(c, 'l', State::Nul, "in literal null (expecting 'l')");
      case State::Nul:
        return literal(c, 'l', State::EndValue, "in literal null (expecting 'l')");
    }
    return false;
  }

  State state_ = State::BeginValue;
  std::vector<Parse> stack_;
  bool endTop_ = false;
  std::string error_;
};

// Decodes one UTF-8 sequence at `text[i]`; returns its length, or 0 when it is invalid.

}  // namespace

Source::Source(std::string_view text) : text_(text) {
  if (text.size() <= kReusableParserBytes) {
    thread_local od::parser shared;
    parser_ = &shared;
  } else {
    ownParser_ = std::make_unique<od::parser>();
    parser_ = ownParser_.get();
  }
}

simdjson::error_code Source::iterate(od::document& document) {
  return parser_->iterate(text_).get(document);
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && isSpace(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && isSpace(text.back()))
    text.remove_suffix(1);
  return text;
}

bool unquote(std::string_view literal, std::string* decoded) {
  if (literal.size() < 2 || literal.front() != '"' || literal.back() != '"') return false;
  const std::string_view body = literal.substr(1, literal.size() - 2);
  if (decoded != nullptr) decoded->clear();
  size_t i = 0;
  while (i < body.size()) {
    // Copy the run up to the next escape at once; raw quotes and control characters are not
    // allowed in it (simdjson's on-demand reader does not check control characters, Go does).
    const size_t start = i;
    while (i < body.size() && body[i] != '\\') {
      const auto c = static_cast<unsigned char>(body[i]);
      if (c == '"' || c < 0x20) return false;
      ++i;
    }
    if (decoded != nullptr) decoded->append(body, start, i - start);
    if (i == body.size()) break;
    if (i + 1 == body.size()) return false;
    if (const char simple = simpleEscape(body[i + 1]); simple != 0) {
      if (decoded != nullptr) *decoded += simple;
      i += 2;
      continue;
    }
    uint32_t rune = 0;
    if (body[i + 1] != 'u' || !readHex4(body, i + 2, rune)) return false;
    i += 6;
    // As Go's unquote: a high surrogate pairs with an immediately following low one; any other
    // surrogate becomes U+FFFD and the escape after it is read on its own.
    if (rune >= 0xd800 && rune < 0xe000) {
      uint32_t low = 0;
      if (rune < 0xdc00 && i + 1 < body.size() && body[i] == '\\' && body[i + 1] == 'u' &&
          readHex4(body, i + 2, low) && low >= 0xdc00 && low < 0xe000) {
        rune = 0x10000 + ((rune - 0xd800) << 10) + (low - 0xdc00);
        i += 6;
      } else {
        rune = 0xfffd;
      }
    }
    if (decoded != nullptr) appendUtf8(*decoded, rune);
  }
  return true;
}

simdjson::error_code readKey(simdjson::simdjson_result<od::field>& field, Key& key) {
  od::raw_json_string raw;
  auto error = field.key().get(raw);
  if (error) return error;
  // raw() points just after the opening quote. Stage 1 paired the quotes, skipping escaped
  // ones the same way, so this scan stops at the closing quote inside the buffer.
  const char* begin = raw.raw() - 1;
  const char* end = raw.raw();
  while (*end != '"')
    end += *end == '\\' ? 2 : 1;
  key.text = std::string_view(begin, static_cast<size_t>(end + 1 - begin));
  return unquote(key.text, &key.name) ? simdjson::SUCCESS : simdjson::STRING_ERROR;
}

bool isNumber(std::string_view text) {
  size_t i = 0;
  const auto digits = [&] {
    const size_t start = i;
    while (i < text.size() && isDigit(text[i]))
      ++i;
    return i > start;
  };
  if (i < text.size() && text[i] == '-') ++i;
  if (i < text.size() && text[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == text.size();
}

simdjson::error_code readRaw(od::value value, std::string_view& text, size_t depth) {
  od::json_type type;
  auto error = value.type().get(type);
  if (error) return error;
  if (type != od::json_type::array && type != od::json_type::object) {
    return readScalar(value, type, text);
  }
  const char* start = value.raw_json_token().data();
  error = skip(value, depth);
  if (error) return error;
  return spanTo(value, start, text);
}

simdjson::error_code skip(od::value value, size_t depth) {
  if (depth >= kMaxDepth) return simdjson::DEPTH_ERROR;
  od::json_type type;
  auto error = value.type().get(type);
  if (error) return error;
  switch (type) {
    case od::json_type::array: {
      od::array array;
      error = value.get_array().get(array);
      if (error) return error;
      for (auto element : array) {
        od::value item;
        error = element.get(item);
        if (!error) error = skip(item, depth + 1);
        if (error) return error;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::object: {
      od::object object;
      error = value.get_object().get(object);
      if (error) return error;
      for (auto field : object) {
        Key key;
        error = readKey(field, key);
        if (error) return error;
        od::value item;
        error = field.value().get(item);
        if (!error) error = skip(item, depth + 1);
        if (error) return error;
      }
      return simdjson::SUCCESS;
    }
    default: {
      std::string_view text;
      return readScalar(value, type, text);
    }
  }
}

simdjson::error_code readElements(od::value value, std::vector<std::string_view>& elements,
                                  size_t depth) {
  if (depth >= kMaxDepth) return simdjson::DEPTH_ERROR;
  od::array array;
  auto error = value.get_array().get(array);
  if (error) return error;
  for (auto element : array) {
    od::value item;
    std::string_view text;
    error = element.get(item);
    if (!error) error = readRaw(item, text, depth + 1);
    if (error) return error;
    elements.push_back(text);
  }
  return simdjson::SUCCESS;
}

simdjson::error_code readLeaves(od::value value, std::vector<std::string_view>& leaves,
                                size_t depth) {
  if (depth >= kMaxDepth) return simdjson::DEPTH_ERROR;
  od::json_type type;
  auto error = value.type().get(type);
  if (error) return error;
  if (type != od::json_type::array) {
    std::string_view text;
    error = readRaw(value, text, depth);
    if (!error) leaves.push_back(text);
    return error;
  }
  od::array array;
  error = value.get_array().get(array);
  if (error) return error;
  for (auto element : array) {
    od::value item;
    error = element.get(item);
    if (!error) error = readLeaves(item, leaves, depth + 1);
    if (error) return error;
  }
  return simdjson::SUCCESS;
}

simdjson::error_code expectEnd(od::document& document) {
  const char* location = nullptr;
  auto error = document.current_location().get(location);
  return error == simdjson::OUT_OF_BOUNDS ? simdjson::SUCCESS : simdjson::TRAILING_CONTENT;
}

simdjson::error_code validate(od::document& document, std::string_view text) {
  od::json_type type;
  auto error = document.type().get(type);
  if (error) return error;
  if (type == od::json_type::array || type == od::json_type::object) {
    od::value root;
    error = document.get_value().get(root);
    if (!error) error = skip(root);
    return error ? error : expectEnd(document);
  }
  // A scalar root is one token; Go's scanner decides whether it is exactly one valid value.
  return goSyntaxError(text).empty() ? simdjson::SUCCESS : simdjson::TAPE_ERROR;
}

bool goFieldMatches(std::string_view key, std::string_view name) {
  if (key == name) return true;
  size_t k = 0;
  for (char expected : name) {
    if (k >= key.size()) return false;
    const auto c = static_cast<unsigned char>(key[k]);
    if (c < 0x80) {
      const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : static_cast<char>(c);
      if (lower != expected) return false;
      ++k;
      continue;
    }
    // Go folds each rune r to ToUpper(ToLower(r)); these are the non-ASCII runes that land on
    // an ASCII letter.
    uint32_t rune = 0;
    const size_t length = core::utf8Length(key, k, rune);
    char folded = 0;
    if (rune == 0x130 || rune == 0x131) folded = 'i';
    if (rune == 0x17f) folded = 's';
    if (rune == 0x212a) folded = 'k';
    if (length == 0 || folded != expected) return false;
    k += length;
  }
  return k == key.size();
}

std::string goSyntaxError(std::string_view text) {
  return GoScanner().check(text);
}

}  // namespace batcher::json
