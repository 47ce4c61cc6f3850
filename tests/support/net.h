// Loopback networking helpers for tests: free ports, waiting for listeners, an HTTP client
// (libcurl, a real client) and raw sockets for byte-exact and hostile exchanges.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace testsupport {

using namespace std::chrono_literals;

// A TCP port on 127.0.0.1 that was free a moment ago.
uint16_t freePort();
// A listening TCP socket on 127.0.0.1 at a port the kernel picks (stored in `port`), for
// hand-made servers; -1 when it cannot be made.
int listenOnLoopback(int backlog, uint16_t& port);
// Starts a connect to 127.0.0.1:port without waiting for it to complete; the non-blocking socket
// (the caller closes it), or -1.
int startConnect(uint16_t port);
// A listener on 127.0.0.1 whose accept queue is full and never drained: the kernel drops
// further SYNs, so a connect to it hangs as one toward a black-holed address does (on loopback,
// deterministically). Closed with the object.
class UnansweringListener {
 public:
  UnansweringListener();
  ~UnansweringListener();
  UnansweringListener(const UnansweringListener&) = delete;
  UnansweringListener& operator=(const UnansweringListener&) = delete;
  bool ok() const { return listener_ >= 0 && fillers_.size() == kFillers; }
  uint16_t port() const { return port_; }

 private:
  static constexpr size_t kFillers = 4;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::vector<int> fillers_;
};

// Polls until something accepts TCP connections on 127.0.0.1:port.
bool waitForPort(uint16_t port, std::chrono::milliseconds timeout = 10s);

struct HttpResponse {
  long status = 0;  // 0: no HTTP answer (see error)
  std::string body;
  // Header names lower-cased; repeated headers keep their last value.
  std::map<std::string, std::string> headers;
  std::string error;
  std::string header(const std::string& lowerName) const;
};

struct HttpOptions {
  std::string method = "GET";
  std::string body;
  std::vector<std::string> headers;  // "Name: value"
  std::chrono::milliseconds timeout = 30s;
  bool chunkedUpload = false;  // send the body with Transfer-Encoding: chunked
  std::string unixSocket;      // connect through this socket path (leading '@' for abstract)
};

HttpResponse httpRequest(const std::string& url, const HttpOptions& options = {});

// A connected TCP client socket, closed on destruction.
class RawSocket {
 public:
  explicit RawSocket(uint16_t port);
  ~RawSocket();
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  bool connected() const { return fd_ >= 0; }
  // The socket itself, for what the methods below do not cover (non-blocking sends, queries).
  int fd() const { return fd_; }
  bool send(const std::string& bytes);
  // Reads what arrives until `predicate(data)` holds, the peer closes, or the timeout passes.
  std::string readUntil(const std::function<bool(const std::string&)>& predicate,
                        std::chrono::milliseconds timeout = 10s);
  // Reads until the peer closes the connection (or the timeout).
  std::string readAll(std::chrono::milliseconds timeout = 10s);
  // True when the peer has closed the connection (reads EOF or reset within the timeout).
  bool closedByPeer(std::chrono::milliseconds timeout = 5s);
  void close();

 private:
  int fd_ = -1;
};

// Counts complete HTTP/1.1 responses in a byte stream (Content-Length or chunked bodies).
size_t countResponses(const std::string& stream);

// Decodes standard base64 (what a peer reports of binary bodies); stops at padding and skips
// anything outside the alphabet, such as line breaks.
std::string base64Decode(std::string_view text);

}  // namespace testsupport
