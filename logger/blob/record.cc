#include "logger/blob/record.h"

#include <nlohmann/json.hpp>

#include <array>
#include <ctime>

#include "core/util/encoding.h"

namespace logger::blob {
namespace {

// ---- Go's net/url escaping (shouldEscape, escape, unescape) ----

enum class UrlPart { Path, Host, Zone, UserPassword, Fragment };

bool isAlnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool isHex(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

unsigned char unhex(unsigned char c) {
  if (c >= '0' && c <= '9') return static_cast<unsigned char>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<unsigned char>(c - 'a' + 10);
  return static_cast<unsigned char>(c - 'A' + 10);
}

bool oneOf(unsigned char c, std::string_view set) {
  return c != 0 && set.find(static_cast<char>(c)) != std::string_view::npos;
}

// Go's shouldEscape: whether a byte must be %-encoded in that part of a URL.
bool shouldEscape(unsigned char c, UrlPart part) {
  if (isAlnum(c)) return false;
  // Hosts allow the sub-delims, ':' and brackets (port, IPv6) and a few more that Go lets by.
  if ((part == UrlPart::Host || part == UrlPart::Zone) && oneOf(c, "!$&'()*+,;=:[]<>\"")) {
    return false;
  }
  if (oneOf(c, "-_.~")) return false;
  if (oneOf(c, "$&+,/:;=?@")) {
    switch (part) {
      case UrlPart::Path:
        return c == '?';
      case UrlPart::UserPassword:
        return oneOf(c, "@/?:");
      case UrlPart::Fragment:
        return false;
      default:
        return true;
    }
  }
  return !(part == UrlPart::Fragment && oneOf(c, "!()*"));
}

std::string escape(std::string_view text, UrlPart part) {
  static constexpr char kUpperHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (shouldEscape(c, part)) {
      out += '%';
      out += kUpperHex[c >> 4];
      out += kUpperHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

bool unescape(std::string_view text, UrlPart part, std::string& out, std::string& error) {
  out.clear();
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '%') {
      if (i + 2 >= text.size() || !isHex(static_cast<unsigned char>(text[i + 1])) ||
          !isHex(static_cast<unsigned char>(text[i + 2]))) {
        error = "invalid URL escape \"" + std::string(text.substr(i, 3)) + "\"";
        return false;
      }
      // In a host, %-encoding is only for non-ASCII bytes (and "%25" before a zone).
      if (part == UrlPart::Host && unhex(static_cast<unsigned char>(text[i + 1])) < 8 &&
          text.substr(i, 3) != "%25") {
        error = "invalid URL escape \"" + std::string(text.substr(i, 3)) + "\"";
        return false;
      }
      out += static_cast<char>((unhex(static_cast<unsigned char>(text[i + 1])) << 4) |
                               unhex(static_cast<unsigned char>(text[i + 2])));
      i += 3;
      continue;
    }
    if ((part == UrlPart::Host || part == UrlPart::Zone) && c < 0x80 && shouldEscape(c, part)) {
      error = "invalid character \"" + std::string(1, static_cast<char>(c)) + "\" in host name";
      return false;
    }
    out += static_cast<char>(c);
    ++i;
  }
  return true;
}

// Go's validEncoded: `text` could be the escaped form of a path or fragment.
bool validEncoded(std::string_view text, UrlPart part) {
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (!oneOf(c, "!$&'()*+,;=:@[]%") && shouldEscape(c, part)) return false;
  }
  return true;
}

// Go's EscapedPath / EscapedFragment: the raw form when it is a valid encoding of the decoded
// value, else the decoded value escaped.
std::string escapedForm(const std::string& decoded, const std::string& raw, UrlPart part) {
  if (!raw.empty() && validEncoded(raw, part)) {
    std::string check;
    std::string error;
    if (unescape(raw, part, check, error) && check == decoded) return raw;
  }
  if (part == UrlPart::Path && decoded == "*") return "*";
  return escape(decoded, part);
}

bool validOptionalPort(std::string_view port) {
  if (port.empty()) return true;
  if (port[0] != ':') return false;
  for (char c : port.substr(1)) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

bool parseHost(std::string_view host, std::string& out, std::string& error) {
  if (!host.empty() && host[0] == '[') {
    const size_t close = host.rfind(']');
    if (close == std::string_view::npos) {
      error = "missing ']' in host";
      return false;
    }
    if (!validOptionalPort(host.substr(close + 1))) {
      error = "invalid port \"" + std::string(host.substr(close + 1)) + "\" after host";
      return false;
    }
    // RFC 6874: "%25" starts a zone, which may use any %-encoding.
    const size_t zone = host.substr(0, close).find("%25");
    if (zone != std::string_view::npos) {
      std::string before;
      std::string inside;
      std::string after;
      if (!unescape(host.substr(0, zone), UrlPart::Host, before, error) ||
          !unescape(host.substr(zone, close - zone), UrlPart::Zone, inside, error) ||
          !unescape(host.substr(close), UrlPart::Host, after, error)) {
        return false;
      }
      out = before + inside + after;
      return true;
    }
  } else if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    if (!validOptionalPort(host.substr(colon))) {
      error = "invalid port \"" + std::string(host.substr(colon)) + "\" after host";
      return false;
    }
  }
  return unescape(host, UrlPart::Host, out, error);
}

bool validUserinfo(std::string_view text) {
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (!isAlnum(c) && !oneOf(c, "-._:~!$&'()*+,;=%@")) return false;
  }
  return true;
}

// ---- calendar arithmetic (proleptic Gregorian, any year) ----

int64_t daysFromCivil(int64_t year, unsigned month, unsigned day) {
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const auto yoe = static_cast<unsigned>(year - era * 400);
  const unsigned doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civilFromDays(int64_t days, int64_t& year, unsigned& month, unsigned& day) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const auto doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  day = doy - (153 * mp + 2) / 5 + 1;
  month = mp < 10 ? mp + 3 : mp - 9;
  year = static_cast<int64_t>(yoe) + era * 400 + (month <= 2 ? 1 : 0);
}

unsigned daysInMonth(int64_t year, unsigned month) {
  static constexpr std::array<unsigned, 12> kDays{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

int64_t floorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0 && (a < 0) != (b < 0)) ? 1 : 0);
}

void appendDigits(std::string& out, int64_t value, int width) {
  std::array<char, 24> buffer{};
  int length = 0;
  do {
    buffer[static_cast<size_t>(length++)] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0);
  for (int i = length; i < width; ++i)
    out += '0';
  while (length > 0)
    out += buffer[static_cast<size_t>(--length)];
}

bool readDigits(std::string_view text, size_t at, size_t count, int64_t& value) {
  if (at + count > text.size()) return false;
  value = 0;
  for (size_t i = at; i < at + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    value = value * 10 + (text[i] - '0');
  }
  return true;
}

// ---- JSON helpers ----

void appendKey(std::string& out, bool& first, const char* name) {
  if (!first) out += ',';
  first = false;
  out += '"';
  out += name;
  out += "\":";
}

void appendStringField(std::string& out, bool& first, const char* name, const std::string& value) {
  if (value.empty()) return;
  appendKey(out, first, name);
  core::appendGoJsonString(out, value);
}

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Go's encoding/json matches a key to a field exactly or, failing that, ignoring ASCII case.
bool sameName(std::string_view key, std::string_view field) {
  if (key.size() != field.size()) return false;
  for (size_t i = 0; i < key.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(key[i]) != lower(field[i])) return false;
  }
  return true;
}

template <size_t N>
int fieldIndex(std::string_view key, const std::array<const char*, N>& names) {
  for (size_t i = 0; i < N; ++i) {
    if (key == names[i]) return static_cast<int>(i);
  }
  for (size_t i = 0; i < N; ++i) {
    if (sameName(key, names[i])) return static_cast<int>(i);
  }
  return -1;
}

enum RecordField {
  kUrl,
  kBytes,
  kContentType,
  kReqType,
  kId,
  kSourceUri,
  kInferenceService,
  kNamespace,
  kComponent,
  kEndpoint,
  kMetadata,
  kAnnotations,
  kCertName,
  kTlsSkipVerify,
  kOccurrenceTime,
};
constexpr std::array<const char*, 15> kRecordFields{
    "url",       "bytes",         "contentType",      "reqType",
    "id",        "sourceUri",     "inferenceService", "namespace",
    "component", "endpoint",      "metadata",         "annotations",
    "certName",  "tlsSkipVerify", "occurrenceTime"};

enum UrlField {
  kScheme,
  kOpaque,
  kUser,
  kHost,
  kPath,
  kRawPath,
  kOmitHost,
  kForceQuery,
  kRawQuery,
  kFragment,
  kRawFragment,
};
constexpr std::array<const char*, 11> kUrlFields{"Scheme",   "Opaque",   "User",       "Host",
                                                 "Path",     "RawPath",  "OmitHost",   "ForceQuery",
                                                 "RawQuery", "Fragment", "RawFragment"};

// A SAX reader that decodes a batch straight into records (no document tree: a batch of
// large payloads is held once, as decoded bytes, plus the text being read).
class BatchReader : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit BatchReader(std::vector<LogRequest>& batch) : batch_(batch) {}

  const std::string& error() const { return error_; }
  bool done() const { return done_; }

  bool null() override { return onValue(Kind::Null, nullptr, false); }
  bool boolean(bool value) override { return onValue(Kind::Bool, nullptr, value); }
  bool number_integer(number_integer_t) override { return onValue(Kind::Number, nullptr, false); }
  bool number_unsigned(number_unsigned_t) override { return onValue(Kind::Number, nullptr, false); }
  bool number_float(number_float_t, const string_t&) override {
    return onValue(Kind::Number, nullptr, false);
  }
  bool string(string_t& value) override { return onValue(Kind::String, &value, false); }
  bool binary(binary_t&) override { return onValue(Kind::Number, nullptr, false); }
  bool start_object(std::size_t) override { return onValue(Kind::Object, nullptr, false); }
  bool start_array(std::size_t) override { return onValue(Kind::Array, nullptr, false); }

  bool key(string_t& name) override {
    Frame& frame = stack_.back();
    switch (frame.kind) {
      case FrameKind::Record:
        frame.field = fieldIndex(name, kRecordFields);
        fieldName_ = name;
        break;
      case FrameKind::Url:
        frame.field = fieldIndex(name, kUrlFields);
        break;
      case FrameKind::Metadata:
      case FrameKind::Annotations:
        mapKey_ = name;
        break;
      default:
        break;
    }
    return true;
  }

  bool end_object() override { return close(); }
  bool end_array() override { return close(); }

  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    std::string what = ex.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> from "parse".
    const size_t bracket = what.find("] ");
    error_ = bracket == std::string::npos ? what : what.substr(bracket + 2);
    return false;
  }

 private:
  enum class Kind { Null, Bool, Number, String, Object, Array };
  enum class FrameKind { Batch, Record, Url, Metadata, MetadataValues, Annotations, Skip };
  struct Frame {
    FrameKind kind;
    int field = -1;
  };

  static const char* describe(Kind kind) {
    switch (kind) {
      case Kind::Null:
        return "null";
      case Kind::Bool:
        return "a boolean";
      case Kind::Number:
        return "a number";
      case Kind::String:
        return "a string";
      case Kind::Object:
        return "an object";
      case Kind::Array:
        return "an array";
    }
    return "a value";
  }

  // Fails on the field being read; its record is the last one of the batch.
  bool fail(const std::string& message) {
    error_ = "record " + std::to_string(batch_.size() - 1) + ": field \"" + fieldName_ +
             "\": " + message;
    return false;
  }

  bool typeError(const char* expected, Kind got) {
    return fail(std::string("expected ") + expected + ", got " + describe(got));
  }

  bool close() {
    stack_.pop_back();
    if (stack_.empty()) done_ = true;
    return true;
  }

  // Containers that a value opens are pushed here; scalars are stored where they belong.
  bool onValue(Kind kind, std::string* text, bool flag) {
    if (stack_.empty()) {
      if (done_) return true;
      if (kind == Kind::Null) {
        done_ = true;
        return true;
      }
      if (kind != Kind::Array) {
        error_ = std::string("expected a JSON array of log records, got ") + describe(kind);
        return false;
      }
      stack_.push_back({FrameKind::Batch});
      return true;
    }
    Frame& frame = stack_.back();
    switch (frame.kind) {
      case FrameKind::Skip:
        if (kind == Kind::Object || kind == Kind::Array) stack_.push_back({FrameKind::Skip});
        return true;
      case FrameKind::Batch:
        if (kind == Kind::Null) {
          batch_.emplace_back();
          return true;
        }
        if (kind != Kind::Object) {
          error_ = "record " + std::to_string(batch_.size()) + ": expected an object, got " +
                   describe(kind);
          return false;
        }
        batch_.emplace_back();
        stack_.push_back({FrameKind::Record});
        return true;
      case FrameKind::Record:
        return recordValue(frame.field, kind, text, flag);
      case FrameKind::Url:
        return urlValue(frame.field, kind, text, flag);
      case FrameKind::Metadata:
        if (kind == Kind::Null) {
          batch_.back().metadata[mapKey_] = std::nullopt;
          return true;
        }
        if (kind != Kind::Array) return typeError("an array of strings", kind);
        batch_.back().metadata[mapKey_].emplace();
        stack_.push_back({FrameKind::MetadataValues});
        return true;
      case FrameKind::MetadataValues: {
        auto& values = *batch_.back().metadata[mapKey_];
        if (kind == Kind::Null) {
          values.emplace_back();
          return true;
        }
        if (kind != Kind::String) return typeError("an array of strings", kind);
        values.push_back(std::move(*text));
        return true;
      }
      case FrameKind::Annotations:
        if (kind == Kind::Null) {
          batch_.back().annotations[mapKey_].clear();
          return true;
        }
        if (kind != Kind::String) return typeError("an object of strings", kind);
        batch_.back().annotations[mapKey_] = std::move(*text);
        return true;
    }
    return true;
  }

  bool storeString(std::string& target, Kind kind, std::string* text) {
    if (kind == Kind::Null) return true;  // Go: null leaves a string unchanged
    if (kind != Kind::String) return typeError("a string", kind);
    target = std::move(*text);
    return true;
  }

  bool storeBool(bool& target, Kind kind, bool flag) {
    if (kind == Kind::Null) return true;
    if (kind != Kind::Bool) return typeError("a boolean", kind);
    target = flag;
    return true;
  }

  bool startUrl(std::optional<GoUrl>& target, Kind kind) {
    if (kind == Kind::Null) {
      target.reset();
      return true;
    }
    if (kind != Kind::Object) return typeError("a url.URL object", kind);
    // Go decodes into the URL already there, so a repeated field merges.
    if (!target) target.emplace();
    urlTarget_ = &*target;
    stack_.push_back({FrameKind::Url});
    return true;
  }

  bool recordValue(int field, Kind kind, std::string* text, bool flag) {
    LogRequest& record = batch_.back();
    switch (field) {
      case kUrl:
        return startUrl(record.url, kind);
      case kSourceUri:
        return startUrl(record.sourceUri, kind);
      case kBytes:
        if (kind == Kind::Null) {
          record.bytes.reset();
          return true;
        }
        if (kind != Kind::String) return typeError("a base64 string", kind);
        record.bytes.emplace();
        if (!decodeBase64(*text, *record.bytes)) return fail("not valid base64");
        return true;
      case kContentType:
        return storeString(record.contentType, kind, text);
      case kReqType:
        return storeString(record.reqType, kind, text);
      case kId:
        return storeString(record.id, kind, text);
      case kInferenceService:
        return storeString(record.inferenceService, kind, text);
      case kNamespace:
        return storeString(record.namespace_, kind, text);
      case kComponent:
        return storeString(record.component, kind, text);
      case kEndpoint:
        return storeString(record.endpoint, kind, text);
      case kCertName:
        return storeString(record.certName, kind, text);
      case kTlsSkipVerify:
        return storeBool(record.tlsSkipVerify, kind, flag);
      case kMetadata:
      case kAnnotations:
        if (kind == Kind::Null) {
          if (field == kMetadata) {
            record.metadata.clear();
          } else {
            record.annotations.clear();
          }
          return true;
        }
        if (kind != Kind::Object) {
          return typeError(
              field == kMetadata ? "an object of string arrays" : "an object of strings", kind);
        }
        stack_.push_back({field == kMetadata ? FrameKind::Metadata : FrameKind::Annotations});
        return true;
      case kOccurrenceTime:
        if (kind == Kind::Null) return true;
        if (kind != Kind::String) return typeError("an RFC 3339 time string", kind);
        if (!Timestamp::parseRfc3339(*text, record.occurrenceTime)) {
          return fail("not an RFC 3339 time: \"" + text->substr(0, 64) + "\"");
        }
        return true;
      default:
        if (kind == Kind::Object || kind == Kind::Array) stack_.push_back({FrameKind::Skip});
        return true;
    }
  }

  bool urlValue(int field, Kind kind, std::string* text, bool flag) {
    GoUrl& url = *urlTarget_;
    switch (field) {
      case kScheme:
        return storeString(url.scheme, kind, text);
      case kOpaque:
        return storeString(url.opaque, kind, text);
      case kUser:
        // A *Userinfo: null clears it; an object (whatever it holds: the fields are
        // unexported) sets it.
        if (kind == Kind::Null) {
          url.hasUser = false;
          return true;
        }
        if (kind != Kind::Object) return typeError("a url.Userinfo object", kind);
        url.hasUser = true;
        stack_.push_back({FrameKind::Skip});
        return true;
      case kHost:
        return storeString(url.host, kind, text);
      case kPath:
        return storeString(url.path, kind, text);
      case kRawPath:
        return storeString(url.rawPath, kind, text);
      case kOmitHost:
        return storeBool(url.omitHost, kind, flag);
      case kForceQuery:
        return storeBool(url.forceQuery, kind, flag);
      case kRawQuery:
        return storeString(url.rawQuery, kind, text);
      case kFragment:
        return storeString(url.fragment, kind, text);
      case kRawFragment:
        return storeString(url.rawFragment, kind, text);
      default:
        if (kind == Kind::Object || kind == Kind::Array) stack_.push_back({FrameKind::Skip});
        return true;
    }
  }

  std::vector<LogRequest>& batch_;
  std::vector<Frame> stack_;
  std::string fieldName_;
  std::string mapKey_;
  GoUrl* urlTarget_ = nullptr;
  std::string error_;
  bool done_ = false;
};

}  // namespace

bool GoUrl::parse(std::string_view text, GoUrl& out, std::string& error, std::string* user) {
  out = GoUrl{};
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      error = "net/url: invalid control character in URL";
      return false;
    }
  }
  std::string_view rest = text;
  std::string_view fragment;
  bool hasFragment = false;
  if (const size_t hash = rest.find('#'); hash != std::string_view::npos) {
    fragment = rest.substr(hash + 1);
    hasFragment = true;
    rest = rest.substr(0, hash);
  }
  if (rest == "*") {
    out.path = "*";
  } else {
    // The scheme: a letter, then letters, digits, '+', '-', '.', up to a ':'.
    for (size_t i = 0; i < rest.size(); ++i) {
      const auto c = static_cast<unsigned char>(rest[i]);
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) continue;
      if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.') {
        if (i == 0) break;
        continue;
      }
      if (c == ':') {
        if (i == 0) {
          error = "missing protocol scheme";
          return false;
        }
        out.scheme.assign(rest.substr(0, i));
        for (char& s : out.scheme)
          s = static_cast<char>(s >= 'A' && s <= 'Z' ? s + 32 : s);
        rest = rest.substr(i + 1);
      }
      break;
    }
    const size_t question = rest.find('?');
    if (question != std::string_view::npos && question == rest.size() - 1) {
      out.forceQuery = true;
      rest = rest.substr(0, question);
    } else if (question != std::string_view::npos) {
      out.rawQuery.assign(rest.substr(question + 1));
      rest = rest.substr(0, question);
    }
    if (rest.empty() || rest[0] != '/') {
      if (!out.scheme.empty()) {
        // A rootless path after a scheme is opaque (RFC 3986).
        out.opaque.assign(rest);
        rest = {};
      } else if (rest.substr(0, rest.find('/')).find(':') != std::string_view::npos) {
        error = "first path segment in URL cannot contain colon";
        return false;
      }
    }
    if (out.opaque.empty()) {
      if ((!out.scheme.empty() || !rest.starts_with("///")) && rest.starts_with("//")) {
        std::string_view authority = rest.substr(2);
        rest = {};
        if (const size_t slash = authority.find('/'); slash != std::string_view::npos) {
          rest = authority.substr(slash);
          authority = authority.substr(0, slash);
        }
        const size_t at = authority.rfind('@');
        if (!parseHost(at == std::string_view::npos ? authority : authority.substr(at + 1),
                       out.host, error)) {
          return false;
        }
        if (at != std::string_view::npos) {
          const std::string_view userinfo = authority.substr(0, at);
          if (!validUserinfo(userinfo)) {
            error = "net/url: invalid userinfo";
            return false;
          }
          std::string name;
          std::string password;
          const size_t colon = userinfo.find(':');
          if (!unescape(userinfo.substr(0, colon), UrlPart::UserPassword, name, error) ||
              (colon != std::string_view::npos &&
               !unescape(userinfo.substr(colon + 1), UrlPart::UserPassword, password, error))) {
            return false;
          }
          if (user != nullptr) *user = std::move(name);
          out.hasUser = true;
        }
      } else if (!out.scheme.empty() && rest.starts_with("/")) {
        out.omitHost = true;
      }
      if (!unescape(rest, UrlPart::Path, out.path, error)) return false;
      if (escape(out.path, UrlPart::Path) != rest) out.rawPath.assign(rest);
    }
  }
  if (hasFragment && !fragment.empty()) {
    if (!unescape(fragment, UrlPart::Fragment, out.fragment, error)) return false;
    if (escape(out.fragment, UrlPart::Fragment) != fragment) out.rawFragment.assign(fragment);
  }
  return true;
}

std::string GoUrl::toString() const {
  std::string out;
  if (!scheme.empty()) {
    out += scheme;
    out += ':';
  }
  if (!opaque.empty()) {
    out += opaque;
  } else {
    if (!scheme.empty() || !host.empty() || hasUser) {
      if (!(omitHost && host.empty() && !hasUser)) {
        if (!host.empty() || !path.empty() || hasUser) out += "//";
        if (hasUser) out += '@';
        if (!host.empty()) out += escape(host, UrlPart::Host);
      }
    }
    const std::string escapedPath = escapedForm(path, rawPath, UrlPart::Path);
    if (!escapedPath.empty() && escapedPath[0] != '/' && !host.empty()) out += '/';
    if (out.empty()) {
      // RFC 3986 §4.2: a first segment with a colon would read as a scheme.
      const std::string_view first = std::string_view(escapedPath).substr(0, escapedPath.find('/'));
      if (first.find(':') != std::string_view::npos) out += "./";
    }
    out += escapedPath;
  }
  if (forceQuery || !rawQuery.empty()) {
    out += '?';
    out += rawQuery;
  }
  if (!fragment.empty()) {
    out += '#';
    out += escapedForm(fragment, rawFragment, UrlPart::Fragment);
  }
  return out;
}

Timestamp Timestamp::now() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  std::tm local{};
  const time_t seconds = now.tv_sec;
  localtime_r(&seconds, &local);
  Timestamp out;
  out.seconds = now.tv_sec;
  out.nanos = static_cast<uint32_t>(now.tv_nsec);
  // Go writes offsets to the minute only (Z07:00); zones with seconds in them are historical.
  out.offsetSeconds = static_cast<int32_t>(local.tm_gmtoff / 60 * 60);
  return out;
}

void Timestamp::appendRfc3339Nano(std::string& out) const {
  const int64_t local = seconds + offsetSeconds;
  const int64_t days = floorDiv(local, 86400);
  const int64_t secondOfDay = local - days * 86400;
  int64_t year = 0;
  unsigned month = 0;
  unsigned day = 0;
  civilFromDays(days, year, month, day);
  appendDigits(out, year, 4);
  out += '-';
  appendDigits(out, month, 2);
  out += '-';
  appendDigits(out, day, 2);
  out += 'T';
  appendDigits(out, secondOfDay / 3600, 2);
  out += ':';
  appendDigits(out, secondOfDay / 60 % 60, 2);
  out += ':';
  appendDigits(out, secondOfDay % 60, 2);
  if (nanos != 0) {
    uint32_t fraction = nanos;
    int digits = 9;
    while (fraction % 10 == 0) {
      fraction /= 10;
      --digits;
    }
    out += '.';
    appendDigits(out, fraction, digits);
  }
  if (offsetSeconds == 0) {
    out += 'Z';
    return;
  }
  const int32_t minutes = (offsetSeconds < 0 ? -offsetSeconds : offsetSeconds) / 60;
  out += offsetSeconds < 0 ? '-' : '+';
  appendDigits(out, minutes / 60, 2);
  out += ':';
  appendDigits(out, minutes % 60, 2);
}

bool Timestamp::parseRfc3339(std::string_view text, Timestamp& out) {
  int64_t year = 0;
  int64_t month = 0;
  int64_t day = 0;
  int64_t hour = 0;
  int64_t minute = 0;
  int64_t second = 0;
  if (!readDigits(text, 0, 4, year) || text.size() < 20 || text[4] != '-' ||
      !readDigits(text, 5, 2, month) || text[7] != '-' || !readDigits(text, 8, 2, day) ||
      text[10] != 'T' || !readDigits(text, 11, 2, hour) || text[13] != ':' ||
      !readDigits(text, 14, 2, minute) || text[16] != ':' || !readDigits(text, 17, 2, second)) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 ||
      day > static_cast<int64_t>(daysInMonth(year, static_cast<unsigned>(month))) || hour > 23 ||
      minute > 59 || second > 59) {
    return false;
  }
  size_t at = 19;
  uint32_t nanos = 0;
  if (text[at] == '.') {
    ++at;
    const size_t start = at;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      // Digits past the ninth are read and dropped, as Go does.
      if (at - start < 9) nanos = nanos * 10 + static_cast<uint32_t>(text[at] - '0');
      ++at;
    }
    if (at == start) return false;
    for (size_t i = at - start; i < 9; ++i)
      nanos *= 10;
  }
  int32_t offset = 0;
  if (at < text.size() && text[at] == 'Z') {
    ++at;
  } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    int64_t offsetHours = 0;
    int64_t offsetMinutes = 0;
    if (!readDigits(text, at + 1, 2, offsetHours) || at + 3 >= text.size() || text[at + 3] != ':' ||
        !readDigits(text, at + 4, 2, offsetMinutes) || offsetHours > 23 || offsetMinutes > 59) {
      return false;
    }
    offset = static_cast<int32_t>((offsetHours * 60 + offsetMinutes) * 60);
    if (text[at] == '-') offset = -offset;
    at += 6;
  } else {
    return false;
  }
  if (at != text.size()) return false;
  out.seconds =
      daysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
      hour * 3600 + minute * 60 + second - offset;
  out.nanos = nanos;
  out.offsetSeconds = offset;
  return true;
}

void appendMetadataJson(std::string& out, const Metadata& metadata) {
  out += '{';
  bool first = true;
  for (const auto& [name, values] : metadata) {
    if (!first) out += ',';
    first = false;
    core::appendGoJsonString(out, name);
    out += ':';
    if (!values) {
      out += "null";
      continue;
    }
    out += '[';
    for (size_t i = 0; i < values->size(); ++i) {
      if (i > 0) out += ',';
      core::appendGoJsonString(out, (*values)[i]);
    }
    out += ']';
  }
  out += '}';
}

void appendAnnotationsJson(std::string& out, const Annotations& annotations) {
  out += '{';
  bool first = true;
  for (const auto& [name, value] : annotations) {
    if (!first) out += ',';
    first = false;
    core::appendGoJsonString(out, name);
    out += ':';
    core::appendGoJsonString(out, value);
  }
  out += '}';
}

void appendGoUrlJson(std::string& out, const GoUrl& url) {
  out += "{\"Scheme\":";
  core::appendGoJsonString(out, url.scheme);
  out += ",\"Opaque\":";
  core::appendGoJsonString(out, url.opaque);
  out += url.hasUser ? ",\"User\":{}" : ",\"User\":null";
  out += ",\"Host\":";
  core::appendGoJsonString(out, url.host);
  out += ",\"Path\":";
  core::appendGoJsonString(out, url.path);
  out += ",\"RawPath\":";
  core::appendGoJsonString(out, url.rawPath);
  out += url.omitHost ? ",\"OmitHost\":true" : ",\"OmitHost\":false";
  out += url.forceQuery ? ",\"ForceQuery\":true" : ",\"ForceQuery\":false";
  out += ",\"RawQuery\":";
  core::appendGoJsonString(out, url.rawQuery);
  out += ",\"Fragment\":";
  core::appendGoJsonString(out, url.fragment);
  out += ",\"RawFragment\":";
  core::appendGoJsonString(out, url.rawFragment);
  out += '}';
}

void appendLogRequestJson(std::string& out, const LogRequest& record) {
  out += '{';
  bool first = true;
  if (record.url) {
    appendKey(out, first, "url");
    appendGoUrlJson(out, *record.url);
  }
  if (record.bytes) {
    appendKey(out, first, "bytes");
    out += '"';
    appendBase64(out, *record.bytes);
    out += '"';
  }
  appendStringField(out, first, "contentType", record.contentType);
  appendStringField(out, first, "reqType", record.reqType);
  appendStringField(out, first, "id", record.id);
  if (record.sourceUri) {
    appendKey(out, first, "sourceUri");
    appendGoUrlJson(out, *record.sourceUri);
  }
  appendStringField(out, first, "inferenceService", record.inferenceService);
  appendStringField(out, first, "namespace", record.namespace_);
  appendStringField(out, first, "component", record.component);
  appendStringField(out, first, "endpoint", record.endpoint);
  if (!record.metadata.empty()) {
    appendKey(out, first, "metadata");
    appendMetadataJson(out, record.metadata);
  }
  if (!record.annotations.empty()) {
    appendKey(out, first, "annotations");
    appendAnnotationsJson(out, record.annotations);
  }
  appendStringField(out, first, "certName", record.certName);
  if (record.tlsSkipVerify) {
    appendKey(out, first, "tlsSkipVerify");
    out += "true";
  }
  appendKey(out, first, "occurrenceTime");
  out += '"';
  record.occurrenceTime.appendRfc3339Nano(out);
  out += "\"}";
}

void appendBatchJson(std::string& out, const std::vector<LogRequest>& batch) {
  out += '[';
  for (size_t i = 0; i < batch.size(); ++i) {
    if (i > 0) out += ',';
    appendLogRequestJson(out, batch[i]);
  }
  out += ']';
}

bool decodeBatch(std::string_view text, std::vector<LogRequest>& batch, std::string& error) {
  batch.clear();
  BatchReader reader(batch);
  // strict=false: the value is read and what follows it is not, as Go's json.Decoder does.
  const bool ok =
      nlohmann::json::sax_parse(text, &reader, nlohmann::json::input_format_t::json, false);
  if (!ok || !reader.done()) {
    error = reader.error().empty() ? "incomplete JSON" : reader.error();
    batch.clear();
    return false;
  }
  return true;
}

void appendBase64(std::string& out, std::string_view bytes) {
  const size_t start = out.size();
  out.resize(start + (bytes.size() + 2) / 3 * 4);
  char* at = out.data() + start;
  const auto* in = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = (uint32_t{in[i]} << 16) | (uint32_t{in[i + 1]} << 8) | in[i + 2];
    *at++ = kBase64[n >> 18];
    *at++ = kBase64[(n >> 12) & 63];
    *at++ = kBase64[(n >> 6) & 63];
    *at++ = kBase64[n & 63];
  }
  if (const size_t left = bytes.size() - i; left > 0) {
    const uint32_t n = (uint32_t{in[i]} << 16) | (left == 2 ? uint32_t{in[i + 1]} << 8 : 0);
    *at++ = kBase64[n >> 18];
    *at++ = kBase64[(n >> 12) & 63];
    *at++ = left == 2 ? kBase64[(n >> 6) & 63] : '=';
    *at++ = '=';
  }
}

bool decodeBase64(std::string_view text, std::string& out) {
  static const std::array<int8_t, 256> kValues = [] {
    std::array<int8_t, 256> values{};
    values.fill(-1);
    for (int i = 0; i < 64; ++i)
      values[static_cast<unsigned char>(kBase64[i])] = static_cast<int8_t>(i);
    return values;
  }();
  out.clear();
  out.reserve(text.size() / 4 * 3);
  uint32_t quantum = 0;
  int count = 0;    // sextets in the current quantum
  int padding = 0;  // '=' seen
  for (char ch : text) {
    if (ch == '\r' || ch == '\n') continue;
    if (ch == '=') {
      // Padding completes a quantum of 2 or 3 sextets; nothing but padding (or CR/LF) follows.
      if (count < 2 || count + padding >= 4) return false;
      ++padding;
      continue;
    }
    if (padding > 0) return false;
    const int8_t value = kValues[static_cast<unsigned char>(ch)];
    if (value < 0) return false;
    quantum = (quantum << 6) | static_cast<uint32_t>(value);
    if (++count == 4) {
      out += static_cast<char>(quantum >> 16);
      out += static_cast<char>((quantum >> 8) & 0xff);
      out += static_cast<char>(quantum & 0xff);
      quantum = 0;
      count = 0;
    }
  }
  if (count == 0) return padding == 0;
  if (count + padding != 4) return false;
  if (count == 2) {
    out += static_cast<char>(quantum >> 4);
  } else {
    out += static_cast<char>(quantum >> 10);
    out += static_cast<char>((quantum >> 2) & 0xff);
  }
  return true;
}

}  // namespace logger::blob
