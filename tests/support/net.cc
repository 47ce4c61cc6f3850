#include "tests/support/net.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <thread>

namespace testsupport {

namespace {

sockaddr_in loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// A TCP socket (with `flags` such as SOCK_NONBLOCK) connecting to 127.0.0.1:port: connected,
// or for a non-blocking one, connecting; -1 on failure.
int openConnection(uint16_t port, int flags) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
  if (fd < 0) return -1;
  sockaddr_in addr = loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int connectTo(uint16_t port) {
  int fd = openConnection(port, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

size_t writeBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t writeHeader(char* data, size_t size, size_t n, void* user) {
  auto* response = static_cast<HttpResponse*>(user);
  std::string line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) response->headers.clear();
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    std::string value = line.substr(colon + 1);
    auto begin = value.find_first_not_of(" \t");
    auto end = value.find_last_not_of(" \t\r\n");
    value = begin == std::string::npos ? "" : value.substr(begin, end - begin + 1);
    response->headers[name] = value;
  }
  return size * n;
}

struct UploadState {
  const std::string* body;
  size_t offset = 0;
};

size_t readBody(char* buffer, size_t size, size_t n, void* user) {
  auto* state = static_cast<UploadState*>(user);
  size_t count = std::min(size * n, state->body->size() - state->offset);
  std::memcpy(buffer, state->body->data() + state->offset, count);
  state->offset += count;
  return count;
}

}  // namespace

uint16_t freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = loopback(0);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

int listenOnLoopback(int backlog, uint16_t& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr = loopback(0);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      ::listen(fd, backlog) != 0) {
    ::close(fd);
    return -1;
  }
  port = ntohs(addr.sin_port);
  return fd;
}

int startConnect(uint16_t port) {
  return openConnection(port, SOCK_NONBLOCK);
}

UnansweringListener::UnansweringListener() {
  listener_ = listenOnLoopback(0, port_);
  if (listener_ < 0) return;
  // Non-blocking connects fill the queue whatever its exact length, without waiting.
  for (size_t i = 0; i < kFillers; ++i) {
    int fd = startConnect(port_);
    if (fd < 0) return;
    fillers_.push_back(fd);
  }
  std::this_thread::sleep_for(100ms);
}

UnansweringListener::~UnansweringListener() {
  for (int fd : fillers_)
    ::close(fd);
  if (listener_ >= 0) ::close(listener_);
}

bool waitForPort(uint16_t port, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = connectTo(port);
    if (fd >= 0) {
      ::close(fd);
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::string HttpResponse::header(const std::string& lowerName) const {
  auto it = headers.find(lowerName);
  return it == headers.end() ? "" : it->second;
}

HttpResponse httpRequest(const std::string& url, const HttpOptions& options) {
  HttpResponse response;
  CURL* curl = curl_easy_init();
  curl_slist* headers = nullptr;
  for (const auto& h : options.headers)
    headers = curl_slist_append(headers, h.c_str());
  UploadState upload{&options.body};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, options.method.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, writeBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, writeHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &response);
  if (options.method == "HEAD") curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  if (!options.body.empty() || options.chunkedUpload) {
    if (options.chunkedUpload) {
      headers = curl_slist_append(headers, "Transfer-Encoding: chunked");
      curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(curl, CURLOPT_READFUNCTION, readBody);
      curl_easy_setopt(curl, CURLOPT_READDATA, &upload);
      curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, options.method.c_str());
    } else {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, options.body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(options.body.size()));
    }
  }
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (!options.unixSocket.empty()) {
    if (options.unixSocket[0] == '@') {
      curl_easy_setopt(curl, CURLOPT_ABSTRACT_UNIX_SOCKET, options.unixSocket.c_str() + 1);
    } else {
      curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, options.unixSocket.c_str());
    }
  }
  CURLcode rc = curl_easy_perform(curl);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  } else {
    response.error = curl_easy_strerror(rc);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return response;
}

RawSocket::RawSocket(uint16_t port) : fd_(connectTo(port)) {}

RawSocket::~RawSocket() {
  close();
}

void RawSocket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawSocket::send(const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

std::string RawSocket::readUntil(const std::function<bool(const std::string&)>& predicate,
                                 std::chrono::milliseconds timeout) {
  std::string data;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[65536];
  while (!predicate(data)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  return data;
}

std::string RawSocket::readAll(std::chrono::milliseconds timeout) {
  return readUntil([](const std::string&) { return false; }, timeout);
}

bool RawSocket::closedByPeer(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n <= 0) return true;
  }
  return false;
}

size_t countResponses(const std::string& stream) {
  size_t count = 0;
  size_t pos = 0;
  while (pos < stream.size()) {
    size_t headEnd = stream.find("\r\n\r\n", pos);
    if (headEnd == std::string::npos) break;
    std::string head = stream.substr(pos, headEnd - pos);
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    size_t bodyStart = headEnd + 4;
    auto cl = lower.find("\r\ncontent-length:");
    if (lower.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
      size_t p = bodyStart;
      while (true) {
        size_t lineEnd = stream.find("\r\n", p);
        if (lineEnd == std::string::npos) return count;
        size_t size = std::stoul(stream.substr(p, lineEnd - p), nullptr, 16);
        p = lineEnd + 2 + size + 2;
        if (size == 0) break;
      }
      if (p > stream.size()) return count;
      pos = p;
    } else if (cl != std::string::npos) {
      size_t size = std::stoul(lower.substr(cl + 17));
      if (bodyStart + size > stream.size()) return count;
      pos = bodyStart + size;
    } else {
      pos = bodyStart;
    }
    ++count;
  }
  return count;
}

std::string base64Decode(std::string_view text) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned value = 0;
  int bits = 0;
  for (char c : text) {
    if (c == '=') break;
    size_t index = kAlphabet.find(c);
    if (index == std::string_view::npos) continue;
    value = (value << 6) | static_cast<unsigned>(index);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((value >> bits) & 0xFF);
    }
  }
  return out;
}

}  // namespace testsupport
