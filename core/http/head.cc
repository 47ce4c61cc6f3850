#include "core/http/head.h"

#include <algorithm>
#include <charconv>

namespace core {

using namespace std::string_view_literals;

namespace {

// The capacity a ScratchString hands on; a larger one is freed instead of being kept.
constexpr size_t kScratchKeep = 16 * 1024;
thread_local std::string scratchSpare;

}  // namespace

ScratchString::ScratchString() {
  text_.swap(scratchSpare);
  text_.clear();
}

ScratchString::~ScratchString() {
  if (text_.capacity() <= kScratchKeep && text_.capacity() > scratchSpare.capacity()) {
    text_.swap(scratchSpare);
  }
}

std::string_view trimSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

const std::string* findHeader(const Headers& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) return &h.value;
  }
  return nullptr;
}

void setHeader(Headers& headers, std::string_view name, std::string value) {
  removeHeader(headers, name);
  headers.push_back({std::string(name), std::move(value)});
}

size_t removeHeader(Headers& headers, std::string_view name) {
  return std::erase_if(headers, [&](const Header& h) { return iequals(h.name, name); });
}

std::vector<std::string_view> splitList(std::string_view value) {
  std::vector<std::string_view> items;
  forEachListItem(value, [&](std::string_view item) {
    items.push_back(item);
    return false;
  });
  return items;
}

bool headerHasToken(std::string_view value, std::string_view token) {
  return forEachListItem(value, [&](std::string_view item) { return iequals(item, token); });
}

std::vector<std::string> connectionOptions(const Headers& headers) {
  std::vector<std::string> names;
  for (const auto& h : headers) {
    if (!iequals(h.name, "Connection")) continue;
    forEachListItem(h.value, [&](std::string_view item) {
      if (!iequals(item, "keep-alive")) names.emplace_back(item);
      return false;
    });
  }
  return names;
}

void appendHeaderLines(std::string& out, const Headers& headers) {
  for (const auto& h : headers)
    appendHeaderLine(out, h);
}

bool isIdempotentMethod(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" ||
         method == "DELETE" || method == "TRACE";
}

std::string_view RequestHead::path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

bool isHopByHopHeader(std::string_view name) {
  // By length first: most names are ruled out without comparing a byte.
  switch (name.size()) {
    case 2:
      return iequals(name, "te");
    case 7:
      return iequals(name, "trailer") || iequals(name, "upgrade");
    case 10:
      return iequals(name, "connection") || iequals(name, "keep-alive");
    case 16:
      return iequals(name, "proxy-connection");
    case 17:
      return iequals(name, "transfer-encoding");
    case 18:
      return iequals(name, "proxy-authenticate");
    case 19:
      return iequals(name, "proxy-authorization");
    default:
      return false;
  }
}

namespace {

bool mayBeTrailer(std::string_view name) {
  static constexpr std::string_view kRefused[] = {
      "authorization",   "cache-control", "content-encoding",
      "content-length",  "content-range", "content-type",
      "expect",          "host",          "max-forwards",
      "pragma",          "range",         "realm",
      "www-authenticate"};
  if (isHopByHopHeader(name)) return false;
  return std::none_of(std::begin(kRefused), std::end(kRefused),
                      [&](std::string_view refused) { return iequals(name, refused); });
}

}  // namespace

void appendLastChunk(std::string& out, const Headers& trailers) {
  out += "0\r\n"sv;
  for (const auto& field : trailers) {
    if (mayBeTrailer(field.name)) appendHeaderLine(out, field);
  }
  out += "\r\n"sv;
}

bool isTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

std::string goCanonicalHeaderName(std::string_view name) {
  for (char c : name) {
    if (!isTokenChar(c)) return std::string(name);
  }
  std::string out(name);
  bool upper = true;
  for (char& c : out) {
    if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    upper = c == '-';
  }
  return out;
}

}  // namespace core
