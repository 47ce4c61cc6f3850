// Hostile clients and misbehaving model servers against the real kserve-agent binary: request
// smuggling attempts, malformed framing, limits, slow and stalled peers, connection floods and
// broken upstream connections. Every case checks the status the agent answers, whether the
// connection is closed afterwards, that the agent still serves a normal request, and that no
// smuggled request reached the model server.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "tests/support/peers.h"

using namespace testsupport;
using namespace std::string_literals;
using nlohmann::json;

namespace {

using Clock = std::chrono::steady_clock;

// Every hostile payload below smuggles this request after its malformed part; the model server
// must never receive it.
const std::string kSmuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

struct Reply {
  std::string bytes;
  bool closed = false;  // the agent closed the connection after answering
  std::chrono::milliseconds elapsed{0};

  std::string statusLine() const { return bytes.substr(0, bytes.find("\r\n")); }
  int status() const {
    if (bytes.rfind("HTTP/1.1 ", 0) != 0 || bytes.size() < 12) return 0;
    return std::stoi(bytes.substr(9, 3));
  }
};

// Reads until the agent closes the connection or `timeout` passes.
Reply readToClose(RawSocket& socket, std::chrono::milliseconds timeout = 5s) {
  Reply reply;
  auto start = Clock::now();
  reply.bytes = socket.readAll(timeout);
  reply.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  reply.closed = socket.closedByPeer(100ms);
  return reply;
}

// Sends `bytes` on a fresh connection and reads the answer until the agent closes.
Reply exchange(uint16_t port, const std::string& bytes) {
  RawSocket socket(port);
  REQUIRE(socket.connected());
  // The agent may close before reading everything; what it answered is still readable.
  socket.send(bytes);
  return readToClose(socket);
}

bool serves(const Agent& agent) {
  HttpResponse r = httpRequest(agent.url("/echo"), {.method = "POST", .body = "after"});
  return r.status == 200 && r.body == "after";
}

// The paths the model server received, in order.
std::vector<std::string> recordedPaths(const ModelServer& model) {
  std::vector<std::string> paths;
  for (const auto& line : model.recordedLines())
    paths.push_back(json::parse(line)["path"]);
  return paths;
}

size_t countPath(const std::vector<std::string>& paths, const std::string& prefix) {
  return static_cast<size_t>(std::count_if(
      paths.begin(), paths.end(), [&](const std::string& p) { return p.rfind(prefix, 0) == 0; }));
}

struct HostileCase {
  std::string name;
  std::string bytes;
  int status;
};

// Sends each case on its own connection: the expected status, then the connection closed, the
// agent still serving, and neither the hostile request nor the smuggled one at the model.
void expectRejected(const ModelServer& model, const Agent& agent,
                    const std::vector<HostileCase>& cases) {
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.name) {
      // A pooled connection to the model server is open, as in production, so a request that
      // started forwarding before it was refused would reach the model at once.
      REQUIRE(serves(agent));
      Reply reply = exchange(agent.port(), c.bytes);
      INFO("agent answered: " << reply.bytes.substr(0, 300));
      CHECK(reply.status() == c.status);
      CHECK(reply.closed);
      CHECK(serves(agent));
      auto paths = recordedPaths(model);
      CHECK(countPath(paths, "/hostile") == 0);
      CHECK(countPath(paths, "/smuggled") == 0);
    }
  }
}

// A model server written by hand because it must misbehave in ways the real one
// (tests/support/model_server.py) cannot be made to: answer garbage, or drop a keep-alive
// connection at an exact moment. One thread polls the listener and every connection; `script`
// decides the answer to each request head: bytes to send, or nullopt to close without answering.
class MisbehavingServer {
 public:
  // connection: 0-based index of the accepted connection; request: 0-based on that connection.
  using Script = std::function<std::optional<std::string>(int connection, int request,
                                                          const std::string& head)>;

  explicit MisbehavingServer(Script script) : script_(std::move(script)) {
    listener_ = listenOnLoopback(64, port_);
    REQUIRE(listener_ >= 0);
    thread_ = std::thread([this] { run(); });
  }

  ~MisbehavingServer() {
    stop_ = true;
    thread_.join();
    for (auto& c : connections_)
      ::close(c.fd);
    ::close(listener_);
  }

  MisbehavingServer(const MisbehavingServer&) = delete;
  MisbehavingServer& operator=(const MisbehavingServer&) = delete;

  uint16_t port() const { return port_; }

  // The request lines received so far ("GET /path HTTP/1.1").
  std::vector<std::string> requestLines() const {
    std::lock_guard lock(mutex_);
    return requestLines_;
  }

 private:
  struct Conn {
    int fd;
    int index;
    int requests = 0;
    std::string buffer;
  };

  void run() {
    int accepted = 0;
    while (!stop_) {
      std::vector<pollfd> fds{{listener_, POLLIN, 0}};
      for (const auto& c : connections_)
        fds.push_back({c.fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 50) <= 0) continue;
      if ((fds[0].revents & POLLIN) != 0) {
        int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) connections_.push_back({fd, accepted++});
      }
      std::vector<int> finished;
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        Conn& c = connections_[i - 1];
        if (!serve(c)) finished.push_back(c.fd);
      }
      std::erase_if(connections_, [&](const Conn& c) {
        if (std::find(finished.begin(), finished.end(), c.fd) == finished.end()) return false;
        ::close(c.fd);
        return true;
      });
    }
  }

  // Reads what arrived and answers every complete request; false when the connection ends.
  bool serve(Conn& c) {
    char buffer[65536];
    ssize_t n = ::recv(c.fd, buffer, sizeof buffer, 0);
    if (n <= 0) return false;
    c.buffer.append(buffer, static_cast<size_t>(n));
    while (true) {
      size_t headEnd = c.buffer.find("\r\n\r\n");
      if (headEnd == std::string::npos) return true;
      std::string head = c.buffer.substr(0, headEnd + 4);
      size_t bodyLength = 0;
      std::string lower = head;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char ch) { return std::tolower(ch); });
      if (size_t at = lower.find("\r\ncontent-length:"); at != std::string::npos) {
        bodyLength = std::stoul(lower.substr(at + 17));
      }
      if (c.buffer.size() < headEnd + 4 + bodyLength) return true;
      c.buffer.erase(0, headEnd + 4 + bodyLength);
      {
        std::lock_guard lock(mutex_);
        requestLines_.push_back(head.substr(0, head.find("\r\n")));
      }
      std::optional<std::string> answer = script_(c.index, c.requests++, head);
      if (!answer) return false;
      if (::send(c.fd, answer->data(), answer->size(), MSG_NOSIGNAL) < 0) return false;
    }
  }

  Script script_;
  int listener_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::vector<Conn> connections_;
  mutable std::mutex mutex_;
  std::vector<std::string> requestLines_;
};

const std::string kOk =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";

}  // namespace

TEST_CASE("request smuggling through Content-Length and Transfer-Encoding is refused",
          "[hostile]") {
  ModelServer model;
  Agent agent(model.port());
  expectRejected(
      model, agent,
      {
          {"Content-Length then Transfer-Encoding",
           "POST /hostile HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
           "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
               kSmuggled,
           400},
          {"Transfer-Encoding then Content-Length",
           "POST /hostile HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           "Content-Length: 40\r\n\r\n0\r\n\r\n" +
               kSmuggled,
           400},
          {"conflicting Content-Length",
           "POST /hostile HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\n"
           "hello" +
               kSmuggled,
           400},
          {"repeated equal Content-Length",
           "POST /hostile HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"
           "hello" +
               kSmuggled,
           400},
          {"Content-Length list",
           "POST /hostile HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 40\r\n\r\nhello" + kSmuggled,
           400},
          {"negative Content-Length",
           "POST /hostile HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n" + kSmuggled, 400},
          {"Transfer-Encoding not ending in chunked",
           "POST /hostile HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
           "0\r\n\r\n" +
               kSmuggled,
           400},
          {"Transfer-Encoding identity",
           "POST /hostile HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n" + kSmuggled,
           400},
          {"Transfer-Encoding gzip",
           "POST /hostile HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n" + kSmuggled, 400},
          {"obfuscated Transfer-Encoding",
           "POST /hostile HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n"
           "Content-Length: 5\r\n\r\nhello" +
               kSmuggled,
           400},
      });
}

TEST_CASE("obsolete header folding is refused, also when the fold arrives in its own read",
          "[hostile]") {
  ModelServer model;
  Agent agent(model.port());
  SECTION("in one read") {
    Reply reply = exchange(
        agent.port(), "GET /hostile HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n" + kSmuggled);
    INFO(reply.bytes);
    CHECK(reply.status() == 400);
    CHECK(reply.closed);
  }
  SECTION("split at the line break") {
    RawSocket socket(agent.port());
    REQUIRE(socket.send("GET /hostile HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n"));
    std::this_thread::sleep_for(100ms);
    socket.send(" b\r\n\r\n" + kSmuggled);
    Reply reply = readToClose(socket);
    INFO(reply.bytes);
    CHECK(reply.status() == 400);
    CHECK(reply.closed);
  }
  CHECK(serves(agent));
  auto paths = recordedPaths(model);
  CHECK(countPath(paths, "/hostile") == 0);
  CHECK(countPath(paths, "/smuggled") == 0);
}

TEST_CASE("bad chunk sizes are refused", "[hostile]") {
  ModelServer model;
  Agent agent(model.port());
  const std::string head =
      "POST /hostile HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const auto& [name, body] : std::vector<std::pair<std::string, std::string>>{
           {"non-hex size", "zz\r\nhello\r\n0\r\n\r\n"},
           {"size overflowing 64 bits", "1ffffffffffffffff\r\nhello\r\n0\r\n\r\n"},
           {"negative size", "-5\r\nhello\r\n0\r\n\r\n"},
           {"size with spaces inside", "5 5\r\nhello\r\n0\r\n\r\n"},
           {"chunk longer than its size", "2\r\nhello\r\n0\r\n\r\n"},
       }) {
    DYNAMIC_SECTION(name) {
      Reply reply = exchange(agent.port(), head + body + kSmuggled);
      INFO(reply.bytes);
      CHECK(reply.status() == 400);
      CHECK_THAT(reply.bytes, Catch::Contains("Connection: close\r\n"));
      CHECK(reply.closed);
      CHECK(serves(agent));
      // The head may have been forwarded before the body went bad; the smuggled request not.
      CHECK(countPath(recordedPaths(model), "/smuggled") == 0);
    }
  }
}

TEST_CASE("bare LF line endings are refused", "[hostile]") {
  ModelServer model;
  Agent agent(model.port());
  expectRejected(
      model, agent,
      {
          {"everywhere", "GET /hostile HTTP/1.1\nHost: x\n\n" + kSmuggled, 400},
          {"after the request line", "GET /hostile HTTP/1.1\nHost: x\r\n\r\n" + kSmuggled, 400},
          {"after a header", "GET /hostile HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n" + kSmuggled, 400},
          {"ending the head", "GET /hostile HTTP/1.1\r\nHost: x\r\n\n" + kSmuggled, 400},
      });
}

TEST_CASE("invalid header names and values, NUL and control bytes are refused", "[hostile]") {
  ModelServer model;
  Agent agent(model.port());
  auto request = [](const std::string& headerLine) {
    return "GET /hostile HTTP/1.1\r\nHost: x\r\n" + headerLine + "\r\n\r\n" + kSmuggled;
  };
  expectRejected(
      model, agent,
      {
          {"space in a header name", request("Bad Name: x"), 400},
          {"space before the colon", request("Transfer-Encoding : chunked"), 400},
          {"empty header name", request(": x"), 400},
          {"separator in a header name", request("X(a): x"), 400},
          {"control byte in a header name", request("X-\x01: x"), 400},
          {"NUL in a header value", request("X-A: a\0b"s), 400},
          {"CR alone in a header value", request("X-A: a\rb"), 400},
          {"DEL in a header value", request("X-A: a\x7f"), 400},
          {"NUL in the request target", "GET /hostile\0/x HTTP/1.1\r\nHost: x\r\n\r\n"s + kSmuggled,
           400},
          {"NUL in the method", "GE\0T /hostile HTTP/1.1\r\nHost: x\r\n\r\n"s + kSmuggled, 400},
          {"space in the request target", "GET /hostile x HTTP/1.1\r\nHost: x\r\n\r\n" + kSmuggled,
           400},
          // HTTP/1.7 is served as HTTP/1.1 (RFC 9112 §2.3, as Go's server does): an
          // unsupported major version and a malformed version are what is refused.
          {"unsupported HTTP version", "GET /hostile HTTP/3.0\r\nHost: x\r\n\r\n" + kSmuggled, 505},
          {"malformed HTTP version", "GET /hostile HTTP/1.10\r\nHost: x\r\n\r\n" + kSmuggled, 400},
          {"not HTTP at all", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"s + kSmuggled, 400},
      });
}

TEST_CASE("request heads over the byte and count limits are answered 431", "[hostile]") {
  ModelServer model;
  Agent agent(model.port(), {"--max-header-bytes=4096", "--max-header-count=10"});
  std::string fourHundred(400, 'v');
  std::string manyBytes;
  for (int i = 0; i < 12; ++i)
    manyBytes += "X-Big-" + std::to_string(i) + ": " + fourHundred + "\r\n";
  std::string tenHeaders = "Host: x\r\n";
  for (int i = 1; i < 10; ++i)
    tenHeaders += "X-H" + std::to_string(i) + ": v\r\n";
  SECTION("the limits themselves are allowed") {
    RawSocket socket(agent.port());
    REQUIRE(socket.send("GET /ten HTTP/1.1\r\n" + tenHeaders + "\r\n"));
    std::string got = socket.readUntil([](const std::string& s) { return countResponses(s) == 1; });
    CHECK(got.rfind("HTTP/1.1 200", 0) == 0);
  }
  expectRejected(
      model, agent,
      {
          {"header bytes over --max-header-bytes",
           "GET /hostile HTTP/1.1\r\nHost: x\r\n" + manyBytes + "\r\n" + kSmuggled, 431},
          {"one header over --max-header-count",
           "GET /hostile HTTP/1.1\r\n" + tenHeaders + "X-H10: v\r\n\r\n" + kSmuggled, 431},
          {"a request target over --max-header-bytes",
           "GET /hostile/" + std::string(8000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n" + kSmuggled,
           431},
          {"a request line that never ends", "GET /hostile/" + std::string(30000, 'a'), 431},
          {"a header value over --max-header-bytes",
           "GET /hostile HTTP/1.1\r\nHost: x\r\nX-Long: " + std::string(8000, 'v') + "\r\n\r\n" +
               kSmuggled,
           431},
      });
}

TEST_CASE(
    "a request body over --max-request-body-bytes is answered 413 and the connection "
    "closed",
    "[hostile]") {
  ModelServer model;
  Agent agent(model.port(), {"--max-request-body-bytes=1000"});
  std::string body(2000, 'b');
  SECTION("declared with Content-Length") {
    Reply reply =
        exchange(agent.port(), "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n" +
                                   body + kSmuggled);
    INFO(reply.bytes);
    CHECK(reply.status() == 413);
    CHECK(reply.closed);
    // Refused from the declared length: the model server never sees the request.
    CHECK(countPath(recordedPaths(model), "/big") == 0);
  }
  SECTION("declared with Expect: 100-continue: refused before the body is sent") {
    RawSocket socket(agent.port());
    REQUIRE(
        socket.send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000000\r\n"
                    "Expect: 100-continue\r\n\r\n"));
    Reply reply = readToClose(socket, 5s);
    INFO(reply.bytes);
    CHECK(reply.status() == 413);
    CHECK(reply.bytes.find("100 Continue") == std::string::npos);
    CHECK(reply.closed);
    CHECK(countPath(recordedPaths(model), "/big") == 0);
  }
  SECTION("chunked") {
    Reply reply = exchange(agent.port(),
                           "POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           "7d0\r\n" +
                               body + "\r\n0\r\n\r\n" + kSmuggled);
    INFO(reply.bytes);
    CHECK(reply.status() == 413);
    CHECK(reply.closed);
  }
  SECTION("the client stops sending after the limit: the connection still closes") {
    RawSocket socket(agent.port());
    REQUIRE(socket.send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + body));
    Reply reply = readToClose(socket, 5s);
    INFO(reply.bytes);
    CHECK(reply.status() == 413);
    CHECK(reply.closed);
  }
  SECTION("exactly the limit is allowed") {
    HttpResponse r = httpRequest(agent.url("/echo"), {.method = "POST", .body = body.substr(1000)});
    CHECK(r.status == 200);
  }
  CHECK(serves(agent));
  CHECK(countPath(recordedPaths(model), "/smuggled") == 0);
}

TEST_CASE("a buffered body over --max-buffered-body-bytes is answered 413 with the batcher on",
          "[hostile]") {
  ModelServer model;
  Agent agent(model.port(), {"--enable-batcher", "--max-buffered-body-bytes=1000",
                             "--max-batchsize=1", "--max-latency=50"});
  std::string instances = "[";
  while (instances.size() < 2000)
    instances += "[1,2,3],";
  instances.back() = ']';
  std::string body = "{\"instances\":" + instances + "}";
  Reply reply = exchange(agent.port(),
                         "POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\n"
                         "Content-Type: application/json\r\nContent-Length: " +
                             std::to_string(body.size()) + "\r\n\r\n" + body + kSmuggled);
  INFO(reply.bytes);
  CHECK(reply.status() == 413);
  CHECK(reply.closed);
  HttpResponse small = httpRequest(agent.url("/v1/models/m:predict"),
                                   {.method = "POST",
                                    .body = R"({"instances":[[1,2,3]]})",
                                    .headers = {"Content-Type: application/json"}});
  CHECK(small.status == 200);
  CHECK(serves(agent));
  auto paths = recordedPaths(model);
  CHECK(countPath(paths, "/v1/models/m:predict") == 1);
  CHECK(countPath(paths, "/smuggled") == 0);
}

TEST_CASE("slowloris: a head not complete within --header-timeout is answered 408 and closed",
          "[hostile]") {
  ModelServer model;
  Agent agent(model.port(), {"--header-timeout=1s"});
  SECTION("a partial head, then silence") {
    RawSocket socket(agent.port());
    REQUIRE(socket.send("GET /hostile HTTP/1.1\r\nHost: x\r\nX-Slow: "));
    Reply reply = readToClose(socket, 6s);
    INFO(reply.bytes);
    CHECK(reply.status() == 408);
    CHECK(reply.closed);
    CHECK(reply.elapsed >= 900ms);
    CHECK(reply.elapsed < 4s);
  }
  SECTION("a head trickling one byte at a time does not extend the deadline") {
    RawSocket socket(agent.port());
    std::string head = "GET /hostile HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(100, 'a');
    auto start = Clock::now();
    std::string got;
    for (char c : head) {
      if (!socket.send(std::string(1, c))) break;
      got += socket.readUntil([](const std::string& s) { return !s.empty(); }, 150ms);
      if (!got.empty()) break;
    }
    Reply rest = readToClose(socket, 3s);
    got += rest.bytes;
    auto elapsed = Clock::now() - start;
    INFO(got);
    CHECK(got.rfind("HTTP/1.1 408", 0) == 0);
    CHECK(rest.closed);
    CHECK(elapsed < 5s);
  }
  CHECK(serves(agent));
  CHECK(countPath(recordedPaths(model), "/hostile") == 0);
}

TEST_CASE("a body the agent holds back while it waits for the model server is not timed out",
          "[hostile]") {
  // The only model server connection is busy for 2.5 s; the second client sends its whole body
  // at once and must wait for it, with a body timer of 1 s.
  ModelServer model;
  Agent agent(model.port(), {"--header-timeout=1s", "--max-upstream-connections=1"});
  auto slow =
      std::async(std::launch::async, [&] { return httpRequest(agent.url("/echo?delay_ms=2500")); });
  std::this_thread::sleep_for(300ms);
  const std::string body(100 * 1024, 'b');
  HttpResponse held = httpRequest(agent.url("/echo"), {.method = "POST", .body = body});
  CHECK(held.status == 200);
  CHECK(held.body == body);
  CHECK(slow.get().status == 200);
}

namespace {

// Sends one request on a new connection and returns how long after the answer the agent closed
// the connection (or `wait` when it did not).
Clock::duration idleCloseAfterOneRequest(const Agent& agent, std::chrono::seconds wait) {
  RawSocket socket(agent.port());
  REQUIRE(socket.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string got = socket.readUntil([](const std::string& s) { return countResponses(s) == 1; });
  REQUIRE(got.rfind("HTTP/1.1 200", 0) == 0);
  auto start = Clock::now();
  bool closed = socket.closedByPeer(wait);
  CHECK(closed);
  return closed ? Clock::now() - start : Clock::duration(wait);
}

}  // namespace

TEST_CASE("idle keep-alive connections are closed after --idle-timeout", "[hostile]") {
  ModelServer model;
  Agent agent(model.port(), {"--idle-timeout=1s"});
  SECTION("after a request") {
    auto elapsed = idleCloseAfterOneRequest(agent, 5s);
    CHECK(elapsed >= 900ms);
    CHECK(elapsed < 4s);
  }
  SECTION("a connection that never sends a byte") {
    RawSocket socket(agent.port());
    auto start = Clock::now();
    CHECK(socket.closedByPeer(5s));
    CHECK(Clock::now() - start < 4s);
  }
  CHECK(serves(agent));
}

TEST_CASE("an idle connection lives out --idle-timeout after an earlier and shorter timer passed",
          "[hostile]") {
  // The header timer (1 s) is due before the idle deadline (2 s after the answer): when it
  // fires, the connection must wait for the rest of its idle time, not close.
  ModelServer model;
  Agent agent(model.port(), {"--idle-timeout=2s", "--header-timeout=1s"});
  auto elapsed = idleCloseAfterOneRequest(agent, 6s);
  CHECK(elapsed >= 1800ms);
  CHECK(elapsed < 4s);
}

TEST_CASE("a client that never reads a large response is disconnected after --write-timeout",
          "[hostile]") {
  ModelServer model;
  Agent agent(model.port(), {"--write-timeout=1s"});
  constexpr size_t kSize = size_t{64} << 20;
  RawSocket socket(agent.port());
  REQUIRE(socket.send("GET /echo?size=" + std::to_string(kSize) + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  // Meanwhile the agent serves others.
  std::this_thread::sleep_for(500ms);
  CHECK(serves(agent));
  std::this_thread::sleep_for(3s);
  // Only now read: what the kernel buffered before the agent gave up, then the close.
  Reply reply = readToClose(socket, 5s);
  CHECK(reply.bytes.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(reply.closed);
  CHECK(reply.bytes.size() < kSize);
  CHECK(serves(agent));
}

namespace {

// Bytes the kernel holds for the agent's end of the connection from clientPort, not yet read
// by the agent (rx_queue in /proc/net/tcp or, as the agent listens on all interfaces of both
// families, /proc/net/tcp6); -1 when there is no such connection.
long agentReceiveQueue(uint16_t agentPort, uint16_t clientPort) {
  for (const char* path : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::istringstream table(readFile(path));
    std::string line;
    std::getline(table, line);  // column titles
    while (std::getline(table, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues;
      fields >> slot >> local >> remote >> state >> queues;
      auto port = [](const std::string& address) {
        return std::stoul(address.substr(address.find(':') + 1), nullptr, 16);
      };
      if (port(local) == agentPort && port(remote) == clientPort)
        return std::stol(queues.substr(queues.find(':') + 1), nullptr, 16);
    }
  }
  return -1;
}

}  // namespace

TEST_CASE("a client that pipelines without pause is read at most 64 KiB ahead", "[hostile]") {
  ModelServer model;
  Agent agent(model.port());
  // The first request is answered after 1 s, the second after 4 s; meanwhile the client keeps
  // sending the rest of 1 MiB of pipelined requests as fast as the agent takes them.
  const std::string first = "GET /echo?delay_ms=1000 HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string second = "GET /echo?delay_ms=4000 HTTP/1.1\r\nHost: x\r\n\r\n";
  constexpr int kFillers = 64;
  const std::string filler =
      "POST /echo?size=2 HTTP/1.1\r\nHost: x\r\nContent-Length: 16384\r\n\r\n" +
      std::string(16384, 'f');
  std::string stream = first + second;
  for (int i = 0; i < kFillers; ++i)
    stream += filler;

  RawSocket client(agent.port());
  REQUIRE(client.connected());
  const int fd = client.fd();
  sockaddr_in addr{};
  socklen_t length = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0);
  const uint16_t clientPort = ntohs(addr.sin_port);

  std::atomic<size_t> sent{0};
  std::jthread sender([&](std::stop_token stop) {
    size_t offset = 0;
    while (offset < stream.size() && !stop.stop_requested()) {
      pollfd ready{fd, POLLOUT, 0};
      if (::poll(&ready, 1, 50) <= 0) continue;
      ssize_t n =
          ::send(fd, stream.data() + offset, stream.size() - offset, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN) break;
      if (n > 0) offset += static_cast<size_t>(n);
      sent = offset;
    }
  });
  std::string answers;
  auto readAnswers = [&](size_t count, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    char buffer[65536];
    while (countResponses(answers) < count && Clock::now() < deadline) {
      pollfd ready{fd, POLLIN, 0};
      if (::poll(&ready, 1, 50) <= 0) continue;
      ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      answers.append(buffer, static_cast<size_t>(n));
    }
    return countResponses(answers);
  };

  // The first answer is out and the second request waits at the model server: what the agent
  // has read is both heads and what it holds of the rest. It is measured once nothing moves.
  REQUIRE(readAnswers(1, 10s) == 1);
  long queued = -1;
  size_t taken = 0;
  int steady = 0;
  for (int i = 0; i < 50 && steady < 5; ++i) {
    std::this_thread::sleep_for(100ms);
    int unsent = 0;
    REQUIRE(::ioctl(fd, TIOCOUTQ, &unsent) == 0);
    long nowQueued = agentReceiveQueue(agent.port(), clientPort);
    REQUIRE(nowQueued >= 0);
    size_t nowTaken = sent - static_cast<size_t>(unsent) - static_cast<size_t>(nowQueued);
    steady = nowTaken == taken && nowQueued == queued ? steady + 1 : 0;
    taken = nowTaken;
    queued = nowQueued;
  }
  REQUIRE(steady == 5);
  INFO("agent took " << taken << " bytes; " << queued << " more wait in its socket");
  CHECK(queued > 0);
  CHECK(taken > first.size() + second.size());
  CHECK(taken <= first.size() + second.size() + 64 * 1024);

  // Nothing is lost: every request is answered.
  CHECK(readAnswers(2 + kFillers, 30s) == 2 + kFillers);
  sender.request_stop();
  sender.join();
  CHECK(sent == stream.size());
  CHECK(serves(agent));
}

TEST_CASE("connections beyond --max-connections are closed, the others are served", "[hostile]") {
  ModelServer model;
  Agent agent(model.port(), {"--max-connections=3"});
  std::vector<std::unique_ptr<RawSocket>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<RawSocket>(agent.port()));
    REQUIRE(held.back()->send("GET /held HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string got =
        held.back()->readUntil([](const std::string& s) { return countResponses(s) == 1; });
    REQUIRE(got.rfind("HTTP/1.1 200", 0) == 0);
  }
  RawSocket extra(agent.port());
  extra.send("GET /hostile HTTP/1.1\r\nHost: x\r\n\r\n");
  Reply reply = readToClose(extra, 3s);
  CHECK(reply.closed);
  CHECK(reply.bytes.find("HTTP/1.1 200") == std::string::npos);
  for (auto& socket : held) {
    REQUIRE(socket->send("GET /again HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string got =
        socket->readUntil([](const std::string& s) { return countResponses(s) == 1; });
    CHECK(got.rfind("HTTP/1.1 200", 0) == 0);
  }
  held.clear();
  bool servedAgain = false;
  for (auto deadline = Clock::now() + 3s; !servedAgain && Clock::now() < deadline;) {
    servedAgain = serves(agent);
    if (!servedAgain) std::this_thread::sleep_for(50ms);
  }
  CHECK(servedAgain);
  CHECK(countPath(recordedPaths(model), "/hostile") == 0);
}

TEST_CASE("a model server slower than --upstream-timeout is answered 504", "[hostile]") {
  ModelServer model;
  Agent agent(model.port(), {"--upstream-timeout=1s"});
  auto start = Clock::now();
  HttpResponse slow = httpRequest(agent.url("/echo?delay_ms=3000"), {.timeout = 10s});
  auto elapsed = Clock::now() - start;
  CHECK(slow.status == 504);
  CHECK(elapsed >= 900ms);
  CHECK(elapsed < 2500ms);
  CHECK(serves(agent));
}

TEST_CASE("the upstream timeout does not run while a slow client holds the response back",
          "[hostile]") {
  ModelServer model;
  Agent agent(model.port(), {"--upstream-timeout=500ms"});
  // More than the socket buffers hold, so that the agent queues 1 MiB and stops reading the
  // model server while the client reads nothing for three times the timeout.
  constexpr size_t kSize = 12'000'000;
  auto socket = requestLargeBody(agent.port(), kSize, "Connection: close\r\n");
  REQUIRE(socket != nullptr);
  std::this_thread::sleep_for(1500ms);
  Reply reply = readToClose(*socket, 20s);
  const size_t headEnd = reply.bytes.find("\r\n\r\n");
  REQUIRE(headEnd != std::string::npos);
  CHECK(reply.bytes.size() - headEnd - 4 == kSize);
}

TEST_CASE("an upload that stalls after its answer was written is still timed out", "[hostile]") {
  // The model server answers a chunked request at once (it reads no chunked body), with more
  // than the socket buffers take, so the agent's write timer runs, and ends, before the stall.
  const std::string large(12'000'000, 'r');
  MisbehavingServer server([&](int, int, const std::string&) -> std::optional<std::string> {
    return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(large.size()) + "\r\n\r\n" +
           large;
  });
  Agent agent(server.port(), {"--header-timeout=1s"});
  RawSocket socket(agent.port());
  REQUIRE(socket.connected());
  int small = 64 * 1024;
  ::setsockopt(socket.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  REQUIRE(
      socket.send("POST /early HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhello\r\n"));
  std::this_thread::sleep_for(300ms);
  std::string got =
      socket.readUntil([&](const std::string& data) { return data.size() >= large.size(); }, 10s);
  REQUIRE(got.size() >= large.size());
  CHECK(socket.closedByPeer(4s));
}

TEST_CASE("a model server that does not accept within --upstream-connect-timeout gives 502",
          "[hostile]") {
  // The agent's connect hangs as it would toward a black-holed address.
  UnansweringListener unanswering;
  REQUIRE(unanswering.ok());
  {
    Agent agent(unanswering.port(), {"--upstream-connect-timeout=1s", "--upstream-timeout=5s"});
    auto start = Clock::now();
    HttpResponse r = httpRequest(agent.url("/any"), {.timeout = 15s});
    auto elapsed = Clock::now() - start;
    CHECK(r.status == 502);
    CHECK_THAT(r.body, Catch::Contains("timed out dialing"));
    CHECK(elapsed >= 900ms);
    CHECK(elapsed < 4s);
  }
}

TEST_CASE("a model server answering garbage gives 502 and its connection is not reused",
          "[hostile]") {
  MisbehavingServer server([](int, int, const std::string& head) -> std::optional<std::string> {
    if (head.find(" /garbage ") != std::string::npos) return std::string("garbage\r\n\r\n");
    if (head.find(" /smuggling-response ") != std::string::npos) {
      return std::string(
          "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
          "0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil");
    }
    if (head.find(" /bad-length ") != std::string::npos) {
      return std::string("HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok");
    }
    if (head.find(" /unasked-switch ") != std::string::npos) {
      return std::string(
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nevil");
    }
    return kOk;
  });
  Agent agent(server.port());
  for (const char* path : {"/garbage", "/smuggling-response", "/bad-length", "/unasked-switch"}) {
    INFO(path);
    HttpResponse bad = httpRequest(agent.url(path));
    CHECK(bad.status == 502);
    CHECK(bad.body.find("evil") == std::string::npos);
    HttpResponse good = httpRequest(agent.url("/fine"));
    CHECK(good.status == 200);
    CHECK(good.body == "ok");
  }
}

TEST_CASE("bytes after a complete model server response reach no client and end the connection",
          "[hostile]") {
  // The model server answers /double twice in one write; the second answer must not be taken
  // for the answer to the next request, and the connection must not go back to the pool.
  std::atomic<int> doubleConnection{-1};
  std::atomic<int> nextConnection{-1};
  MisbehavingServer server(
      [&](int connection, int, const std::string& head) -> std::optional<std::string> {
        if (head.find(" /double ") != std::string::npos) {
          doubleConnection = connection;
          return std::string(
              "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
              "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled");
        }
        if (head.find(" /next ") != std::string::npos) nextConnection = connection;
        return kOk;
      });
  Agent agent(server.port());
  RawSocket socket(agent.port());
  REQUIRE(socket.connected());
  // Pipelined, so the second request is sent as soon as the first answer is complete.
  REQUIRE(
      socket.send("GET /double HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  Reply reply = readToClose(socket);
  INFO(reply.bytes);
  CHECK(reply.bytes.find("first") != std::string::npos);
  CHECK(reply.bytes.find("smuggled") == std::string::npos);
  CHECK(reply.bytes.ends_with("\r\n\r\nok"));
  CHECK(doubleConnection != -1);
  CHECK(nextConnection != -1);
  CHECK(nextConnection != doubleConnection);
  // Concurrent requests afterwards each get their own answer.
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      HttpResponse response = httpRequest(agent.url("/after"));
      if (response.status == 200 && response.body == "ok") ++good;
    });
  }
  for (auto& thread : threads)
    thread.join();
  CHECK(good == 4);
}

TEST_CASE("model server response heads beyond the client limits are relayed", "[hostile]") {
  // Client heads are bounded by --max-header-*; the model server is trusted as Go trusts it.
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n";
  for (int i = 0; i < 150; ++i)
    head += "X-Field-" + std::to_string(i) + ": v\r\n";
  head += "X-Large: " + std::string(70 * 1024, 'a') + "\r\n\r\nok";
  MisbehavingServer server(
      [&](int, int, const std::string&) -> std::optional<std::string> { return head; });
  Agent agent(server.port());
  HttpResponse response = httpRequest(agent.url("/big-head"));
  CHECK(response.status == 200);
  CHECK(response.body == "ok");
  CHECK(response.header("x-field-149") == "v");
  CHECK(response.header("x-large").size() == 70 * 1024);
}

TEST_CASE(
    "a keep-alive connection the model server dropped is retried once, for idempotent "
    "requests only",
    "[hostile]") {
  SECTION("a stale pooled connection: GET is retried on a fresh one, POST is not") {
    // Like a model server whose keep-alive timeout fires just as the agent reuses the
    // connection: the first request on each connection is answered, the second one is read and
    // the connection closed without an answer.
    MisbehavingServer server(
        [](int, int request, const std::string&) -> std::optional<std::string> {
          if (request == 0) return kOk;
          return std::nullopt;
        });
    Agent agent(server.port());
    REQUIRE(httpRequest(agent.url("/warm")).status == 200);
    HttpResponse get = httpRequest(agent.url("/get-retried"));
    CHECK(get.status == 200);
    CHECK(get.body == "ok");

    REQUIRE(httpRequest(agent.url("/warm-again")).status == 200);
    HttpResponse post =
        httpRequest(agent.url("/post-not-retried"), {.method = "POST", .body = "once only"});
    CHECK(post.status == 502);

    auto lines = server.requestLines();
    CHECK(std::count(lines.begin(), lines.end(), "GET /get-retried HTTP/1.1") == 2);
    CHECK(std::count(lines.begin(), lines.end(), "POST /post-not-retried HTTP/1.1") == 1);
  }
  SECTION("a model server that closes every time: GET is tried twice in all, POST once") {
    ModelServer model;
    Agent agent(model.port());
    REQUIRE(httpRequest(agent.url("/warm")).status == 200);
    CHECK(httpRequest(agent.url("/close?get")).status == 502);
    REQUIRE(httpRequest(agent.url("/warm")).status == 200);
    CHECK(httpRequest(agent.url("/close?post"), {.method = "POST", .body = "x"}).status == 502);
    auto paths = recordedPaths(model);
    CHECK(countPath(paths, "/close?get") == 2);
    CHECK(countPath(paths, "/close?post") == 1);
    CHECK(serves(agent));
  }
  SECTION("a model server killed and restarted on the same port: nothing stale is used") {
    uint16_t port = freePort();
    auto model = std::make_unique<ModelServer>(std::vector<std::string>{}, port);
    Agent agent(port);
    REQUIRE(httpRequest(agent.url("/before")).status == 200);
    model->stop();
    model = std::make_unique<ModelServer>(std::vector<std::string>{}, port);
    CHECK(httpRequest(agent.url("/get-after")).status == 200);
    CHECK(httpRequest(agent.url("/echo"), {.method = "POST", .body = "after"}).status == 200);
    auto paths = recordedPaths(*model);
    CHECK(countPath(paths, "/get-after") == 1);
    CHECK(countPath(paths, "/echo") == 1);
  }
}

TEST_CASE("a retried request waiting for a model server connection can be abandoned by its client",
          "[hostile]") {
  // One model server connection. A's GET fails on the pooled connection and is retried, but B
  // took the freed slot first, so A waits; A's client then leaves before the slot frees again.
  MisbehavingServer server([](int, int, const std::string& head) -> std::optional<std::string> {
    if (head.find(" /drop ") != std::string::npos) {
      std::this_thread::sleep_for(500ms);
      return std::nullopt;
    }
    if (head.find(" /b ") != std::string::npos) std::this_thread::sleep_for(500ms);
    return kOk;
  });
  Agent agent(server.port(), {"--max-upstream-connections=1"});
  REQUIRE(httpRequest(agent.url("/warm")).status == 200);
  RawSocket a(agent.port());
  REQUIRE(a.connected());
  REQUIRE(a.send("GET /drop HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::this_thread::sleep_for(100ms);
  auto b = std::async(std::launch::async, [&] { return httpRequest(agent.url("/b")); });
  std::this_thread::sleep_for(600ms);
  a.close();
  HttpResponse answered = b.get();
  CHECK(answered.status == 200);
  HttpResponse after = httpRequest(agent.url("/after"));
  CHECK(after.status == 200);
  CHECK(after.body == "ok");
}

TEST_CASE("credentials never appear in the agent's log, even at debug level", "[hostile]") {
  ModelServer model;
  uint16_t deadSink = freePort();
  const std::string token = "s3cr3t-T0ken-value-4242";
  Agent agent(model.port(),
              {"--log-level=debug", "--log-url=http://127.0.0.1:" + std::to_string(deadSink) + "/",
               "--log-retries=1", "--enable-batcher", "--max-batchsize=1", "--max-latency=10",
               "--upstream-timeout=1s", "--max-header-bytes=4096"});
  std::vector<std::string> credentials = {"Authorization: Bearer " + token,
                                          "Proxy-Authorization: Basic " + token,
                                          "Cookie: session=" + token};
  CHECK(httpRequest(agent.url("/echo"), {.method = "POST", .body = "x", .headers = credentials})
            .status == 200);
  CHECK(httpRequest(agent.url("/v1/models/m:predict"),
                    {.method = "POST", .body = R"({"instances":[1]})", .headers = credentials})
            .status == 200);
  CHECK(httpRequest(agent.url("/echo?delay_ms=2000"), {.headers = credentials}).status == 504);
  CHECK(httpRequest(agent.url("/close"), {.headers = credentials}).status == 502);
  Reply rejected = exchange(agent.port(),
                            "GET /hostile HTTP/1.1\r\nHost: x\r\nAuthorization: "
                            "Bearer " +
                                token + "\r\nBad Header: \x01\r\n\r\n");
  CHECK(rejected.status() == 400);
  Reply oversize =
      exchange(agent.port(), "GET /hostile HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
                                 std::string(8000, 'x') + "\r\n\r\n");
  CHECK(oversize.status() == 431);
  CHECK(agent.terminate() == 0);
  std::string log = agent.process().output();
  std::string lower = log;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  INFO(log);
  CHECK(log.find("s3cr3t") == std::string::npos);
  CHECK(lower.find("authorization") == std::string::npos);
  CHECK(lower.find("bearer") == std::string::npos);
}
