#include "router/graph.h"

#include "router/go_text.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <new>
#include <set>
#include <utility>

namespace router {
namespace {

using std::string_view;

// encoding/json's scanner refuses nesting deeper than this.
constexpr size_t kMaxNesting = 10000;

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}
bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
bool isHex(char c) {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Quotes text for a message: JSON string syntax, so control characters and quotes stay
// readable on one line.
std::string quote(string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// ---------------------------------------------------------------------------------------------
// Syntax: the whole text must be one JSON value, as encoding/json checks before decoding.

std::string syntaxError(string_view text) {
  size_t i = 0;
  size_t n = text.size();
  std::vector<bool> stack;  // true for an object
  auto at = [&](size_t k) { return k < n ? text[k] : '\0'; };
  auto ws = [&] {
    while (i < n && isSpace(text[i]))
      i++;
  };
  auto bad = [&](string_view what) -> std::string {
    if (i >= n) return "graph: not valid JSON: unexpected end of input";
    char c = text[i];
    std::string shown =
        (c >= 0x20 && c < 0x7f) ? std::string("'") + c + "'" : quote(string_view(&text[i], 1));
    return "graph: not valid JSON: invalid character " + shown + " " + std::string(what) +
           " at byte " + std::to_string(i);
  };
  auto string = [&]() -> std::string {
    for (i++; i < n; i++) {
      unsigned char c = static_cast<unsigned char>(text[i]);
      if (c < 0x20) return bad("in string literal");
      if (c == '"') {
        i++;
        return {};
      }
      if (c != '\\') continue;
      i++;
      char e = at(i);
      if (e == 'u') {
        for (int k = 0; k < 4; k++) {
          i++;
          if (!isHex(at(i))) return bad("in \\u escape");
        }
      } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' &&
                 e != 'r' && e != 't') {
        return bad("in string escape");
      }
    }
    return bad("in string literal");
  };
  auto number = [&]() -> std::string {
    if (at(i) == '-') i++;
    if (!isDigit(at(i))) return bad("in number");
    if (at(i) == '0') {
      i++;
    } else {
      while (isDigit(at(i)))
        i++;
    }
    if (at(i) == '.') {
      i++;
      if (!isDigit(at(i))) return bad("after decimal point in number");
      while (isDigit(at(i)))
        i++;
    }
    if (at(i) == 'e' || at(i) == 'E') {
      i++;
      if (at(i) == '+' || at(i) == '-') i++;
      if (!isDigit(at(i))) return bad("in exponent of number");
      while (isDigit(at(i)))
        i++;
    }
    return {};
  };
  auto key = [&]() -> std::string {
    ws();
    if (at(i) != '"') return bad("looking for beginning of object key string");
    if (std::string e = string(); !e.empty()) return e;
    ws();
    if (at(i) != ':') return bad("after object key");
    i++;
    return {};
  };
  for (;;) {
    ws();
    char c = at(i);
    if (c == '{' || c == '[') {
      if (stack.size() >= kMaxNesting) return "graph: not valid JSON: nested deeper than 10000";
      i++;
      ws();
      if (at(i) == (c == '{' ? '}' : ']')) {
        i++;
      } else {
        stack.push_back(c == '{');
        if (c == '{') {
          if (std::string e = key(); !e.empty()) return e;
        }
        continue;
      }
    } else if (c == '"') {
      if (std::string e = string(); !e.empty()) return e;
    } else if (c == '-' || isDigit(c)) {
      if (std::string e = number(); !e.empty()) return e;
    } else if (text.substr(i, 4) == "true" || text.substr(i, 4) == "null") {
      i += 4;
    } else if (text.substr(i, 5) == "false") {
      i += 5;
    } else {
      return bad("looking for beginning of value");
    }
    for (;;) {
      ws();
      if (stack.empty()) return i == n ? std::string() : bad("after top-level value");
      bool object = stack.back();
      if (at(i) == (object ? '}' : ']')) {
        i++;
        stack.pop_back();
        continue;
      }
      if (at(i) != ',') return bad(object ? "after object key:value pair" : "after array element");
      i++;
      if (object) {
        if (std::string e = key(); !e.empty()) return e;
      }
      break;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding a syntactically valid text into the model, as encoding/json does.

// Go's case folding of a key for the comparison with a field name: ASCII letters, and U+017F
// (ſ) and U+212A (K), which Go folds onto 's' and 'k'.
std::string foldKey(string_view key) {
  std::string out;
  for (size_t i = 0; i < key.size(); i++) {
    unsigned char c = static_cast<unsigned char>(key[i]);
    if (c >= 'A' && c <= 'Z') {
      out += static_cast<char>(c + ('a' - 'A'));
    } else if (key.substr(i, 2) == "\xc5\xbf") {
      out += 's';
      i++;
    } else if (key.substr(i, 3) == "\xe2\x84\xaa") {
      out += 'k';
      i += 2;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Whether a JSON key selects the field named `name` (exact match, else Go's folded match; the
// field names of one struct never fold onto each other, so the order does not matter).
bool keyIs(string_view key, string_view name) {
  return key == name || foldKey(key) == foldKey(name);
}

class Decoder {
 public:
  explicit Decoder(string_view text) : text_(text) {}

  // Decodes the whole text into g; returns the first type error, if any.
  std::string run(Graph& g) {
    ws();
    if (peek() == '{') {
      members([&](const std::string& key) {
        if (keyIs(key, "nodes")) {
          nodes(g.nodes);
        } else if (keyIs(key, "routerTimeouts")) {
          timeouts(g.routerTimeouts);
        } else if (keyIs(key, "defaultRetry")) {
          retry(g.defaultRetry, "defaultRetry");
        } else if (keyIs(key, "propagateHeaders")) {
          stringArray(g.propagateHeaders, "propagateHeaders");
        } else {
          skip();
        }
      });
    } else if (!null()) {
      mismatch("the spec", "an object");
    }
    return error_;
  }

 private:
  char peek() const { return i_ < text_.size() ? text_[i_] : '\0'; }
  void ws() {
    while (i_ < text_.size() && isSpace(text_[i_]))
      i_++;
  }

  // The kind of the value at the cursor, as Go names it in its errors.
  std::string kind() const {
    switch (peek()) {
      case '{':
        return "object";
      case '[':
        return "array";
      case '"':
        return "string";
      case 't':
      case 'f':
        return "bool";
      default:
        return "number";
    }
  }

  // Records the first type error and skips the value, as Go does (it decodes on).
  void mismatch(const std::string& field, string_view want) {
    std::string got = kind();
    size_t start = i_;
    skip();
    if (!error_.empty()) return;
    string_view value = trimEnd(text_.substr(start, i_ - start));
    // The value is shown as written but on one line: an error is one line of the log, and JSON
    // allows line breaks between tokens (never inside a string). A run of blanks that holds a
    // line break or a tab becomes one space; other text is kept as it is.
    std::string shown;
    size_t k = 0;
    while (k < value.size() && shown.size() < 40) {
      size_t run = k;
      bool breaks = false;
      while (run < value.size() && isSpace(value[run])) {
        breaks = breaks || value[run] != ' ';
        ++run;
      }
      if (breaks) {
        shown += ' ';
        k = run;
      } else {
        shown += value[k++];
      }
    }
    if (k < value.size()) shown += "...";
    error_ = "graph: " + field + ": want " + std::string(want) + ", got " + got + " " + shown;
  }

  static string_view trimEnd(string_view s) {
    while (!s.empty() && isSpace(s.back()))
      s.remove_suffix(1);
    return s;
  }

  // Consumes a null; false (nothing consumed) for anything else.
  bool null() {
    if (text_.substr(i_, 4) != "null") return false;
    i_ += 4;
    ws();
    return true;
  }

  // Skips one value (the text is known to be valid), without recursion.
  void skip() {
    size_t depth = 0;
    do {
      char c = peek();
      if (c == '"') {
        for (i_++; text_[i_] != '"'; i_ += text_[i_] == '\\' ? 2 : 1) {
        }
        i_++;
      } else if (c == '{' || c == '[') {
        depth++;
        i_++;
      } else if (c == '}' || c == ']') {
        depth--;
        i_++;
      } else if (c == ',' || c == ':') {
        i_++;
      } else {
        while (i_ < text_.size() && !isSpace(text_[i_]) && text_[i_] != ',' && text_[i_] != '}' &&
               text_[i_] != ']') {
          i_++;
        }
      }
      ws();
    } while (depth > 0);
  }

  // Reads the string at the cursor as Go decodes it.
  std::string string() {
    size_t start = ++i_;
    while (text_[i_] != '"')
      i_ += text_[i_] == '\\' ? 2 : 1;
    std::string out = go::unquote(text_.substr(start, i_ - start));
    i_++;
    ws();
    return out;
  }

  // Calls fn(key) for each member of the object at the cursor, with the cursor on the value.
  void members(const std::function<void(const std::string&)>& fn) {
    i_++;
    ws();
    while (peek() != '}') {
      std::string key = string();
      i_++;  // ':'
      ws();
      fn(key);
      if (peek() == ',') {
        i_++;
        ws();
      }
    }
    i_++;
    ws();
  }

  // A Go string field.
  void stringField(std::string& field, const std::string& path) {
    if (peek() == '"') {
      field = string();
    } else if (!null()) {
      mismatch(path, "a string");
    }
  }

  void boolField(bool& field, const std::string& path) {
    if (text_.substr(i_, 4) == "true") {
      field = true;
      i_ += 4;
      ws();
    } else if (text_.substr(i_, 5) == "false") {
      field = false;
      i_ += 5;
      ws();
    } else if (!null()) {
      mismatch(path, "a boolean");
    }
  }

  // A Go *int64 field: an integer literal in range; null clears it.
  void intField(std::optional<std::int64_t>& field, const std::string& path) {
    if (null()) {
      field.reset();
      return;
    }
    char c = peek();
    if (c != '-' && !isDigit(c)) {
      mismatch(path, "an integer (int64)");
      return;
    }
    size_t start = i_;
    bool negative = c == '-';
    size_t k = start + (negative ? 1 : 0);
    std::uint64_t magnitude = 0;
    bool fits = true;
    for (; k < text_.size() && isDigit(text_[k]); k++) {
      unsigned digit = static_cast<unsigned>(text_[k] - '0');
      if (magnitude > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) fits = false;
      magnitude = magnitude * 10 + digit;
    }
    const std::uint64_t limit = negative ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1;
    bool integer = k == text_.size() || (text_[k] != '.' && text_[k] != 'e' && text_[k] != 'E');
    if (!integer || !fits || magnitude > limit) {
      mismatch(path, "an integer (int64)");
      return;
    }
    field =
        negative ? static_cast<std::int64_t>(~magnitude + 1) : static_cast<std::int64_t>(magnitude);
    i_ = k;
    ws();
  }

  void nodes(std::map<std::string, Node>& nodes) {
    if (null()) {
      nodes.clear();
      return;
    }
    if (peek() != '{') {
      mismatch("nodes", "an object");
      return;
    }
    members([&](const std::string& name) {
      // Go decodes each member into a fresh node, which replaces one of the same name.
      Node node;
      std::string path = "nodes[" + quote(name) + "]";
      if (peek() == '{') {
        members([&](const std::string& key) {
          if (keyIs(key, "routerType")) {
            stringField(node.routerType, path + ".routerType");
          } else if (keyIs(key, "steps")) {
            steps(node.steps, path + ".steps");
          } else if (keyIs(key, "intermediateOutputs")) {
            boolField(node.intermediateOutputs, path + ".intermediateOutputs");
          } else {
            skip();
          }
        });
      } else if (!null()) {
        mismatch(path, "an object");
      }
      nodes[name] = std::move(node);
    });
  }

  void steps(std::vector<Step>& steps, const std::string& path) {
    if (null()) {
      steps.clear();
      return;
    }
    if (peek() != '[') {
      mismatch(path, "an array");
      return;
    }
    // Go decodes element i into the step already at i, if any, then cuts to the new length.
    size_t count = 0;
    i_++;
    ws();
    while (peek() != ']') {
      if (count == steps.size()) steps.emplace_back();
      step(steps[count], path + "[" + std::to_string(count) + "]");
      count++;
      if (peek() == ',') {
        i_++;
        ws();
      }
    }
    i_++;
    ws();
    steps.resize(count);
  }

  void step(Step& s, const std::string& path) {
    if (null()) return;
    if (peek() != '{') {
      mismatch(path, "an object");
      return;
    }
    members([&](const std::string& key) {
      if (keyIs(key, "name")) {
        stringField(s.name, path + ".name");
      } else if (keyIs(key, "nodeName")) {
        stringField(s.nodeName, path + ".nodeName");
      } else if (keyIs(key, "serviceName")) {
        stringField(s.serviceName, path + ".serviceName");
      } else if (keyIs(key, "serviceUrl")) {
        stringField(s.serviceUrl, path + ".serviceUrl");
      } else if (keyIs(key, "data")) {
        stringField(s.data, path + ".data");
      } else if (keyIs(key, "mapPredictionsToInstances")) {
        boolField(s.mapPredictionsToInstances, path + ".mapPredictionsToInstances");
      } else if (keyIs(key, "weight")) {
        intField(s.weight, path + ".weight");
      } else if (keyIs(key, "condition")) {
        stringField(s.condition, path + ".condition");
      } else if (keyIs(key, "dependency")) {
        stringField(s.dependency, path + ".dependency");
      } else if (keyIs(key, "retry")) {
        retry(s.retry, path + ".retry");
      } else if (keyIs(key, "v2Chaining")) {
        boolField(s.v2Chaining, path + ".v2Chaining");
      } else {
        skip();
      }
    });
  }

  void timeouts(std::optional<RouterTimeouts>& t) {
    if (null()) {
      t.reset();
      return;
    }
    if (peek() != '{') {
      mismatch("routerTimeouts", "an object");
      return;
    }
    // A pointer to a struct: allocated once, a repeated object is decoded into the same one.
    if (!t) t.emplace();
    members([&](const std::string& key) {
      if (keyIs(key, "serverRead")) {
        intField(t->serverRead, "routerTimeouts.serverRead");
      } else if (keyIs(key, "serverWrite")) {
        intField(t->serverWrite, "routerTimeouts.serverWrite");
      } else if (keyIs(key, "serverIdle")) {
        intField(t->serverIdle, "routerTimeouts.serverIdle");
      } else if (keyIs(key, "serviceClient")) {
        intField(t->serviceClient, "routerTimeouts.serviceClient");
      } else {
        skip();
      }
    });
  }

  // A Go []string: null clears it; a null element is "".
  void stringArray(std::vector<std::string>& field, const std::string& path) {
    if (null()) {
      field.clear();
      return;
    }
    if (peek() != '[') {
      mismatch(path, "an array");
      return;
    }
    field.clear();
    i_++;
    ws();
    while (peek() != ']') {
      field.emplace_back();
      stringField(field.back(), path + "[" + std::to_string(field.size() - 1) + "]");
      if (peek() == ',') {
        i_++;
        ws();
      }
    }
    i_++;
    ws();
  }

  // Decoded as a Go pointer to a struct, as routerTimeouts.
  void retry(std::optional<Retry>& r, const std::string& path) {
    if (null()) {
      r.reset();
      return;
    }
    if (peek() != '{') {
      mismatch(path, "an object");
      return;
    }
    if (!r) r.emplace();
    members([&](const std::string& key) {
      if (keyIs(key, "maxRetries")) {
        intField(r->maxRetries, path + ".maxRetries");
      } else if (keyIs(key, "initialDelayMs")) {
        intField(r->initialDelayMs, path + ".initialDelayMs");
      } else if (keyIs(key, "maxDelayMs")) {
        intField(r->maxDelayMs, path + ".maxDelayMs");
      } else if (keyIs(key, "retryOnStatus")) {
        boolField(r->retryOnStatus, path + ".retryOnStatus");
      } else {
        skip();
      }
    });
  }

  string_view text_;
  size_t i_ = 0;
  std::string error_;
};

// Checks a retry object and fills in its defaults; `where` starts each problem.
void checkRetry(std::optional<Retry>& r, const std::string& where,
                std::vector<std::string>& errors) {
  if (!r) return;
  auto within = [&](std::optional<std::int64_t>& field, const char* name, std::int64_t low,
                    std::int64_t high, std::int64_t absent) {
    if (!field) {
      field = absent;
    } else if (*field < low || *field > high) {
      errors.push_back(where + name + " " + std::to_string(*field) + " is not within " +
                       std::to_string(low) + ".." + std::to_string(high));
    }
  };
  // A day bounds the waits: a longer one is a mistake, and keeps the arithmetic in range.
  constexpr std::int64_t kDayMs = 24 * 3600 * 1000;
  within(r->maxRetries, "maxRetries", 0, kMaxRetries, 0);
  within(r->initialDelayMs, "initialDelayMs", 1, kDayMs, 100);
  within(r->maxDelayMs, "maxDelayMs", 1, kDayMs, std::max<std::int64_t>(5000, *r->initialDelayMs));
  if (*r->maxDelayMs < *r->initialDelayMs) {
    errors.push_back(where + "maxDelayMs " + std::to_string(*r->maxDelayMs) +
                     " is below initialDelayMs " + std::to_string(*r->initialDelayMs));
  }
}

// ---------------------------------------------------------------------------------------------
// Checks.

// Why a serviceUrl cannot be called, as Go's url.Parse and http.Client would refuse it; empty
// when it can.
std::string urlProblem(string_view url) {
  for (unsigned char c : url) {
    if (c < 0x20 || c == 0x7f) return "has a control character";
  }
  size_t colon = url.find(':');
  bool scheme = colon != string_view::npos && colon > 0 &&
                ((url[0] >= 'a' && url[0] <= 'z') || (url[0] >= 'A' && url[0] <= 'Z'));
  for (size_t k = 1; scheme && k < colon; k++) {
    char c = url[k];
    scheme = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) || c == '+' ||
             c == '-' || c == '.';
  }
  std::string name;
  if (scheme) {
    for (char c : url.substr(0, colon))
      name += static_cast<char>(c | 0x20);
  }
  if (name != "http" && name != "https") return "is not an http(s) URL";
  string_view rest = url.substr(colon + 1);
  if (rest.substr(0, 2) != "//") return "has no host";
  rest.remove_prefix(2);
  string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  size_t at = authority.rfind('@');
  if (at != string_view::npos) {
    for (char c : authority.substr(0, at)) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) ||
                string_view("-._:~!$&'()*+,;=%@").find(c) != string_view::npos;
      if (!ok) return "has an invalid user name or password";
    }
    authority.remove_prefix(at + 1);
  }
  string_view host = authority;
  string_view port;
  if (!host.empty() && host[0] == '[') {
    size_t close = host.rfind(']');
    if (close == string_view::npos) return "has no ']' after its IPv6 address";
    port = host.substr(close + 1);
    host = host.substr(0, close + 1);
  } else if (size_t c = host.rfind(':'); c != string_view::npos) {
    port = host.substr(c);
    host = host.substr(0, c);
  }
  if (!port.empty()) {
    if (port[0] != ':') return "has an invalid port";
    for (char c : port.substr(1)) {
      if (!isDigit(c)) return "has an invalid port";
    }
  }
  if (host.empty()) return "has no host";
  // Go's url.Parse: a host holds letters, digits, "-._~!$&'()*+,;=[]:<>\"", bytes above 0x7f,
  // and %XX escapes of such bytes (or %25).
  for (size_t k = 0; k < host.size(); k++) {
    unsigned char c = static_cast<unsigned char>(host[k]);
    if (c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) ||
        string_view("-._~!$&'()*+,;=[]:<>\"").find(static_cast<char>(c)) != string_view::npos) {
      continue;
    }
    if (c == '%' && k + 2 < host.size() && isHex(host[k + 1]) && isHex(host[k + 2]) &&
        (host[k + 1] >= '8' || host.substr(k, 3) == "%25")) {
      k += 2;
      continue;
    }
    return "has an invalid character " + quote(string_view(&host[k], 1)) + " in its host";
  }
  return {};
}

std::string stepLabel(const std::string& node, size_t index, const Step& s) {
  std::string label = "graph: node " + quote(node) + " step " + std::to_string(index);
  label += s.name.empty() ? std::string(" (unnamed)") : " (" + quote(s.name) + ")";
  return label + ": ";
}

const char* routerTypeName(RouterType t) {
  switch (t) {
    case RouterType::Sequence:
      return "Sequence";
    case RouterType::Splitter:
      return "Splitter";
    case RouterType::Ensemble:
      return "Ensemble";
    case RouterType::Switch:
      return "Switch";
  }
  return "";
}

std::vector<std::string> check(Graph& g) {
  std::vector<std::string> errors;
  if (g.nodes.find("root") == g.nodes.end()) errors.push_back("graph: no node named \"root\"");
  checkRetry(g.defaultRetry, "graph: defaultRetry.", errors);
  for (auto& [name, node] : g.nodes) {
    bool known = false;
    for (RouterType t :
         {RouterType::Sequence, RouterType::Splitter, RouterType::Ensemble, RouterType::Switch}) {
      if (node.routerType == routerTypeName(t)) {
        node.type = t;
        known = true;
      }
    }
    if (!known) {
      errors.push_back("graph: node " + quote(name) + ": routerType " + quote(node.routerType) +
                       " is not Sequence, Splitter, Ensemble or Switch");
    }
    std::set<std::string> names;
    std::int64_t weights = 0;
    bool weighable = true;
    for (size_t k = 0; k < node.steps.size(); k++) {
      Step& s = node.steps[k];
      std::string label = stepLabel(name, k, s);
      if (!s.name.empty() && !names.insert(s.name).second) {
        errors.push_back(label + "another step of the node has this name");
      }
      bool byNode = !s.nodeName.empty();
      bool byService = !s.serviceName.empty() || !s.serviceUrl.empty();
      if (byNode && byService) {
        errors.push_back(label + "has several targets (nodeName with serviceName or serviceUrl)");
      } else if (!byNode && !byService) {
        errors.push_back(label + "has no target (nodeName, serviceName or serviceUrl)");
      } else if (byNode && g.nodes.find(s.nodeName) == g.nodes.end()) {
        errors.push_back(label + "nodeName " + quote(s.nodeName) + " names no node");
      } else if (!byNode && s.serviceUrl.empty()) {
        errors.push_back(label + "serviceName " + quote(s.serviceName) +
                         " has no serviceUrl, which the router calls (the controller fills it in)");
      } else if (!byNode) {
        if (std::string problem = urlProblem(s.serviceUrl); !problem.empty()) {
          errors.push_back(label + "serviceUrl " + quote(s.serviceUrl) + " " + problem);
        }
      }
      checkRetry(s.retry, label + "retry.", errors);
      if (s.dependency.empty() || s.dependency == "Soft") {
        s.dependencyType = Dependency::Soft;
      } else if (s.dependency == "Hard") {
        s.dependencyType = Dependency::Hard;
      } else {
        errors.push_back(label + "dependency " + quote(s.dependency) + " is not Soft or Hard");
      }
      if (known && node.type == RouterType::Splitter) {
        if (!s.weight) {
          errors.push_back(label + "a Splitter step needs a weight");
          weighable = false;
        } else if (*s.weight < 0) {
          errors.push_back(label + "weight " + std::to_string(*s.weight) + " is negative");
          weighable = false;
        } else if (weighable) {
          // Saturate: anything above 100 is already wrong.
          weights = std::min<std::int64_t>(weights + std::min<std::int64_t>(*s.weight, 101), 101);
        }
      }
    }
    if (known && node.type == RouterType::Splitter && weighable && !node.steps.empty() &&
        weights != 100) {
      errors.push_back("graph: node " + quote(name) + ": Splitter weights sum to " +
                       (weights > 100 ? std::string("more than 100") : std::to_string(weights)) +
                       ", not 100");
    }
  }
  // Cycles through nodeName, each reported once at the step that closes it, walking from root
  // first. The walk keeps its own stack: a graph may chain many nodes.
  std::map<std::string, int> state;  // 1 on the current path, 2 done
  struct Frame {
    const std::string* name;
    size_t next;
  };
  std::vector<const std::string*> starts;
  if (auto root = g.nodes.find("root"); root != g.nodes.end()) starts.push_back(&root->first);
  for (const auto& entry : g.nodes)
    starts.push_back(&entry.first);
  for (const std::string* start : starts) {
    if (state[*start] != 0) continue;
    std::vector<Frame> path{{start, 0}};
    state[*start] = 1;
    while (!path.empty()) {
      Frame& top = path.back();
      const Node& node = g.nodes.at(*top.name);
      if (top.next == node.steps.size()) {
        state[*top.name] = 2;
        path.pop_back();
        continue;
      }
      size_t k = top.next++;
      auto target = g.nodes.find(node.steps[k].nodeName);
      if (node.steps[k].nodeName.empty() || target == g.nodes.end()) continue;
      int& seen = state[target->first];
      if (seen == 0) {
        seen = 1;
        path.push_back({&target->first, 0});
      } else if (seen == 1) {
        std::string cycle;
        auto from = std::find_if(path.begin(), path.end(),
                                 [&](const Frame& f) { return *f.name == target->first; });
        for (auto it = from; it != path.end(); ++it)
          cycle += quote(*it->name) + " -> ";
        errors.push_back(stepLabel(*path.back().name, k, node.steps[k]) + "nodeName " +
                         quote(target->first) + " closes the cycle " + cycle +
                         quote(target->first));
      }
    }
  }
  return errors;
}

std::vector<std::string> warnings(const Graph& g) {
  std::vector<std::string> out;
  std::set<std::string> reachable;
  std::vector<std::string> todo;
  if (g.nodes.count("root")) todo.push_back("root");
  while (!todo.empty()) {
    std::string name = todo.back();
    todo.pop_back();
    if (!reachable.insert(name).second) continue;
    for (const Step& s : g.nodes.at(name).steps) {
      if (!s.nodeName.empty() && g.nodes.count(s.nodeName)) todo.push_back(s.nodeName);
    }
  }
  for (const auto& [name, node] : g.nodes) {
    if (!reachable.count(name)) {
      out.push_back("graph: node " + quote(name) + " is not reachable from \"root\"");
    }
    if (node.steps.empty()) {
      out.push_back("graph: node " + quote(name) + " has no steps; requests reaching it fail");
    }
    if (node.intermediateOutputs && node.type != RouterType::Sequence) {
      out.push_back("graph: node " + quote(name) +
                    ": intermediateOutputs applies only to a Sequence; it is ignored");
    }
    for (size_t k = 0; k < node.steps.size(); k++) {
      const Step& s = node.steps[k];
      if (!s.condition.empty() && node.type == RouterType::Sequence && k == 0) {
        out.push_back(stepLabel(name, k, s) +
                      "a condition on the first step of a Sequence has no previous response to "
                      "test (upstream answers every request 500 \"invalid response\")");
      }
      if (!s.condition.empty() &&
          (node.type == RouterType::Splitter || node.type == RouterType::Ensemble)) {
        out.push_back(stepLabel(name, k, s) + "the condition is ignored by a " +
                      routerTypeName(node.type) + " node");
      }
      if (s.v2Chaining && s.data != "$response") {
        out.push_back(stepLabel(name, k, s) +
                      "v2Chaining applies only with data \"$response\"; it is ignored");
      }
      if (s.retry && !s.nodeName.empty()) {
        out.push_back(stepLabel(name, k, s) +
                      "retry is ignored on a nodeName step (the node's own steps retry)");
      }
      if (s.weight && node.type != RouterType::Splitter) {
        out.push_back(stepLabel(name, k, s) + "the weight is ignored by a " +
                      routerTypeName(node.type) + " node");
      }
    }
  }
  return out;
}

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) {
    if (!out.empty()) out += '\n';
    out += line;
  }
  return out;
}

}  // namespace

GraphResult decodeGraph(std::string_view json) noexcept {
  GraphResult result;
  try {
    result.error = syntaxError(json);
    if (result.error.empty()) result.error = Decoder(json).run(result.graph);
  } catch (const std::bad_alloc&) {
    result.error = "graph: out of memory while decoding";
  }
  if (!result.error.empty()) result.graph = Graph();
  return result;
}

GraphResult parseGraph(std::string_view json) noexcept {
  GraphResult result = decodeGraph(json);
  if (!result.ok()) return result;
  try {
    result.error = join(check(result.graph));
    if (result.error.empty()) result.graph.warnings = warnings(result.graph);
  } catch (const std::bad_alloc&) {
    result.error = "graph: out of memory while checking";
  }
  if (!result.error.empty()) result.graph = Graph();
  return result;
}

}  // namespace router
