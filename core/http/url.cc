#include "core/http/url.h"

#include <charconv>

#include "core/http/head.h"

namespace core {

std::optional<HttpUrlParts> splitHttpUrl(std::string_view url, std::string* problem) {
  auto fail = [&](const char* why) -> std::optional<HttpUrlParts> {
    if (problem != nullptr) *problem = why;
    return std::nullopt;
  };
  HttpUrlParts parts;
  size_t schemeEnd = url.find("://");
  if (schemeEnd == std::string_view::npos) return fail("expected an http(s) URL");
  std::string_view scheme = url.substr(0, schemeEnd);
  parts.https = iequals(scheme, "https");
  if (!parts.https && !iequals(scheme, "http")) return fail("expected an http(s) URL");
  std::string_view rest = url.substr(schemeEnd + 3);
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  if (end != std::string_view::npos) parts.target = rest.substr(end, rest.find('#') - end);
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    parts.userInfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
  }
  parts.authority = authority;
  std::string_view port;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return fail("the IPv6 address is not closed with ]");
    parts.host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') {
      return fail("unexpected text after the IPv6 address");
    }
    if (!after.empty()) port = after.substr(1);
  } else {
    size_t colon = authority.rfind(':');
    parts.host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (parts.host.empty()) return fail("no host");
  if (!port.empty()) {
    unsigned value = 0;
    auto [next, error] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (error != std::errc() || next != port.data() + port.size() || value == 0 || value > 65535) {
      return fail("the port must be a number from 1 to 65535");
    }
    parts.port = static_cast<uint16_t>(value);
  }
  return parts;
}

std::string httpUrlProblem(std::string_view url) {
  std::string problem;
  splitHttpUrl(url, &problem);
  return problem;
}

std::string Origin::hostPort() const {
  bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string Origin::describe() const {
  return std::string(https ? "https://" : "http://") + hostPort();
}

std::optional<OriginTarget> splitOriginUrl(std::string_view url, std::string* problem) {
  auto parts = splitHttpUrl(url, problem);
  if (!parts) return std::nullopt;
  if (parts->userInfo) {
    if (problem != nullptr) *problem = "user info in the URL is not supported";
    return std::nullopt;
  }
  OriginTarget out;
  out.origin.https = parts->https;
  out.origin.host = std::string(parts->host);
  out.origin.port = parts->port != 0 ? parts->port : (parts->https ? 443 : 80);
  out.target = parts->target.empty() || parts->target.front() == '?'
                   ? "/" + std::string(parts->target)
                   : std::string(parts->target);
  return out;
}

}  // namespace core
