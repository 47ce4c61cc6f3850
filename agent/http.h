// HTTP/1.1 message heads shared by the server, the upstream pool and the modules.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace agent {

struct Header {
  std::string name;
  std::string value;
};
using Headers = std::vector<Header>;

// ASCII case-insensitive comparison, as header names require.
bool iequals(std::string_view a, std::string_view b);

// The first header with this name (case-insensitive), or nullptr.
const std::string* findHeader(const Headers& headers, std::string_view name);

// Replaces every header with this name by one with the given value, or appends it.
void setHeader(Headers& headers, std::string_view name, std::string value);

// Removes every header with this name; returns how many were removed.
size_t removeHeader(Headers& headers, std::string_view name);

// The items of a comma-separated header value, trimmed, empty ones left out (views into value).
std::vector<std::string_view> splitList(std::string_view value);

// True when the comma-separated header value contains the token (case-insensitive).
bool headerHasToken(std::string_view value, std::string_view token);

// The header names the Connection headers list: hop-by-hop for this message (RFC 9110 §7.6.1).
std::vector<std::string> connectionOptions(const Headers& headers);

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

// The standard reason phrase for a status code ("Unknown" for unregistered codes).
std::string_view reasonPhrase(int status);

// Header names that apply to one connection only (RFC 9110 §7.6.1), not forwarded.
bool isHopByHopHeader(std::string_view name);

}  // namespace agent

namespace agent {

// Knative's forwarded shim: when no Forwarded header is present but X-Forwarded-For/-Host/
// -Proto are, synthesise Forwarded from them (for=<node>;host=<h>;proto=<p>, further nodes as
// ", for=<node>", IPv6 nodes quoted in brackets).
void applyForwardedShim(Headers& headers);

}  // namespace agent
