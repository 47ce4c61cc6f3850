// http(s) URLs as the agent, the router, the logger and the storage library take them apart.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace core {

// The parts of an http(s) URL, viewing into it.
struct HttpUrlParts {
  bool https = false;
  std::optional<std::string_view> userInfo;  // before '@' in the authority
  std::string_view authority;                // host and port as written, without user info
  std::string_view host;                     // without the brackets of an IPv6 literal
  uint16_t port = 0;                         // 0 when the URL names none
  std::string_view target;                   // path and query, without the fragment
};

// Splits `url`: the scheme http or https (any case), a host (a bracketed IPv6 literal closed),
// and a port from 1 to 65535 when one is given. nullopt, with why in `problem`, otherwise.
std::optional<HttpUrlParts> splitHttpUrl(std::string_view url, std::string* problem = nullptr);

// Why `url` is not a usable http(s) URL, or "" when it is (see splitHttpUrl).
std::string httpUrlProblem(std::string_view url);

// Where requests go: scheme, host and port. Connections are pooled per origin.
struct Origin {
  bool https = false;
  std::string host;  // a name or an IP literal, without the brackets of IPv6
  uint16_t port = 80;

  // "host:port", IPv6 literals in brackets: the Host header of requests that name none.
  std::string hostPort() const;
  // "http://host:port", for messages.
  std::string describe() const;
  bool operator==(const Origin&) const = default;
};

// An http(s) URL taken apart for a request: its origin (the port defaulted from the scheme) and
// its target (path and query; "/" when the URL has none). nullopt with why in `problem` when the
// URL is not usable, user info included (requests carry no credentials in URLs).
struct OriginTarget {
  Origin origin;
  std::string target;
};
std::optional<OriginTarget> splitOriginUrl(std::string_view url, std::string* problem = nullptr);

}  // namespace core
