// HTTP/1.1 message heads shared by the server, the upstream pool and the modules.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace core {

struct Header {
  std::string name;
  std::string value;
  bool operator==(const Header&) const = default;
};
using Headers = std::vector<Header>;

// ASCII case-insensitive comparison, as header names require. Inline: most calls compare with
// a literal, and the size check then folds to a constant.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x == y) continue;
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// RFC 9110 token characters, the set Go accepts in a header name it canonicalises.
bool isTokenChar(char c);

// Go's textproto.CanonicalMIMEHeaderKey: the first letter and every letter after a hyphen upper
// case, the others lower case ("x-request-id" -> "X-Request-Id"); a name with a character
// outside the token set is returned as it is.
std::string goCanonicalHeaderName(std::string_view name);

// The first header with this name (case-insensitive), or nullptr.
const std::string* findHeader(const Headers& headers, std::string_view name);

// Replaces every header with this name by one with the given value, or appends it.
void setHeader(Headers& headers, std::string_view name, std::string value);

// Removes every header with this name; returns how many were removed.
size_t removeHeader(Headers& headers, std::string_view name);

// Space and tab removed from both ends.
std::string_view trimSpace(std::string_view s);

// Calls `visit` with each item of a comma-separated header value, trimmed, empty ones left out,
// until it returns true; returns whether it did. Allocates nothing.
template <typename Visit>
bool forEachListItem(std::string_view value, Visit visit) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view item = trimSpace(value.substr(0, comma));
    if (!item.empty() && visit(item)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

// The items of a comma-separated header value, trimmed, empty ones left out (views into value).
std::vector<std::string_view> splitList(std::string_view value);

// True when the comma-separated header value contains the token (case-insensitive).
bool headerHasToken(std::string_view value, std::string_view token);

// The header names the Connection headers list: hop-by-hop for this message (RFC 9110 §7.6.1).
// "keep-alive" is left out: the header it names is hop-by-hop anyway, and leaving it out spares
// an allocation on most messages.
std::vector<std::string> connectionOptions(const Headers& headers);

// Appends the header's "Name: value\r\n" line.
inline void appendHeaderLine(std::string& out, const Header& header) {
  out += header.name;
  out += std::string_view(": ");
  out += header.value;
  out += std::string_view("\r\n");
}

// Appends "Name: value\r\n" for every header.
void appendHeaderLines(std::string& out, const Headers& headers);

// GET, HEAD, OPTIONS, TRACE, PUT, DELETE: safe to send again (RFC 9110 §9.2.2).
bool isIdempotentMethod(std::string_view method);

struct RequestHead {
  std::string method;
  std::string target;  // origin-form: path and query exactly as received
  int versionMinor = 1;
  Headers headers;

  // The path part of the target (without query).
  std::string_view path() const;
};

struct ResponseHead {
  int status = 200;
  std::string reason;
  int versionMinor = 1;
  Headers headers;
};

// A string to build a message in that reuses the capacity its predecessor on this thread left:
// once warm, building a head costs no allocation. Nested users each get a string of their own.
class ScratchString {
 public:
  ScratchString();
  ~ScratchString();
  ScratchString(const ScratchString&) = delete;
  ScratchString& operator=(const ScratchString&) = delete;
  std::string& operator*() { return text_; }
  std::string* operator->() { return &text_; }

 private:
  std::string text_;
};

// The standard reason phrase for a status code ("Unknown" for unregistered codes).
std::string_view reasonPhrase(int status);

// Header names that apply to one connection only (RFC 9110 §7.6.1), not forwarded.
bool isHopByHopHeader(std::string_view name);

// The last chunk of a chunked body and its trailer section: "0", the trailer fields that may be
// relayed, an empty line. Fields that must not be trailers (RFC 9110 §6.5.1: framing, routing,
// authentication, content metadata; the set Go's net/http refuses) are left out.
void appendLastChunk(std::string& out, const Headers& trailers);

}  // namespace core
