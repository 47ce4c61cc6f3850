// The proxy core against a real HTTP model server: bodies, framing, keep-alive, pipelining,
// status and headers, failures of the model server and of clients.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "tests/support/peers.h"

using namespace testsupport;
using nlohmann::json;

namespace {

std::string randomBytes(size_t size, unsigned seed) {
  std::mt19937 rng(seed);
  std::string out(size, '\0');
  for (auto& c : out)
    c = static_cast<char>(rng() & 0xff);
  return out;
}

json lastRecorded(const ModelServer& model) {
  auto lines = model.recordedLines();
  REQUIRE(!lines.empty());
  return json::parse(lines.back());
}

std::string recordedHeader(const json& entry, const std::string& name) {
  for (const auto& h : entry["headers"]) {
    std::string key = h[0];
    if (key.size() == name.size() &&
        std::equal(key.begin(), key.end(), name.begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      return h[1];
    }
  }
  return "";
}

}  // namespace

TEST_CASE("bodies of 0 B, 1 KiB and 10 MiB arrive byte-exact in both directions", "[proxy]") {
  ModelServer model;
  Agent agent(model.port());
  for (size_t size : {size_t{0}, size_t{1024}, size_t{10} << 20}) {
    std::string body = randomBytes(size, static_cast<unsigned>(size));
    HttpResponse post = httpRequest(
        agent.url("/echo"),
        {.method = "POST", .body = body, .headers = {"Content-Type: application/octet-stream"}});
    INFO("size " << size);
    CHECK(post.status == 200);
    CHECK(post.body.size() == size);
    CHECK(post.body == body);

    HttpResponse get = httpRequest(agent.url("/echo?size=" + std::to_string(size)));
    CHECK(get.status == 200);
    CHECK(get.body.size() == size);
    std::string pattern;
    for (size_t i = 0; i < size; ++i)
      pattern += static_cast<char>(i % 256);
    CHECK(get.body == pattern);
  }
}

TEST_CASE("chunked request and chunked response bodies stream through", "[proxy]") {
  ModelServer model;
  Agent agent(model.port());
  std::string body = randomBytes(3 << 20, 7);
  HttpResponse r = httpRequest(agent.url("/echo?chunked=1"),
                               {.method = "POST", .body = body, .chunkedUpload = true});
  CHECK(r.status == 200);
  CHECK(r.header("transfer-encoding") == "chunked");
  CHECK(r.body == body);
  json entry = lastRecorded(model);
  CHECK(recordedHeader(entry, "Transfer-Encoding") == "chunked");
}

TEST_CASE("keep-alive: many requests share one upstream connection", "[proxy]") {
  ModelServer model;
  Agent agent(model.port());
  for (int i = 0; i < 50; ++i) {
    HttpResponse r = httpRequest(agent.url("/item/" + std::to_string(i)));
    REQUIRE(r.status == 200);
  }
  HttpResponse direct = httpRequest(agent.url("/stats"));
  json stats = json::parse(direct.body);
  CHECK(stats["requests"].get<int>() == 51);
  CHECK(stats["connections"].get<int>() == 1);
}

TEST_CASE("pipelined requests are answered in order on one client connection", "[proxy]") {
  ModelServer model;
  Agent agent(model.port());
  RawSocket socket(agent.port());
  REQUIRE(socket.connected());
  std::string requests;
  for (int i = 0; i < 5; ++i) {
    std::string body = "request-" + std::to_string(i);
    // The first answer is slow, so the later ones would overtake it if order were not kept.
    std::string delay = i == 0 ? "&delay_ms=200" : "";
    requests += "POST /echo?n=" + std::to_string(i) + delay +
                " HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  REQUIRE(socket.send(requests));
  std::string stream =
      socket.readUntil([](const std::string& s) { return countResponses(s) == 5; });
  REQUIRE(countResponses(stream) == 5);
  size_t last = 0;
  for (int i = 0; i < 5; ++i) {
    size_t at = stream.find("request-" + std::to_string(i));
    REQUIRE(at != std::string::npos);
    CHECK(at >= last);
    last = at;
  }
}

TEST_CASE("status codes and end-to-end headers pass through, hop-by-hop headers do not",
          "[proxy]") {
  ModelServer model;
  Agent agent(model.port());
  for (int status : {200, 201, 202, 400, 404, 418, 500, 503}) {
    HttpResponse r =
        httpRequest(agent.url("/echo?status=" + std::to_string(status) + "&header=X-Model:yes"),
                    {.method = "POST", .body = "x", .headers = {"Content-Type: text/plain"}});
    CHECK(r.status == status);
    CHECK(r.header("x-model") == "yes");
  }
  HttpResponse r =
      httpRequest(agent.url("/headers"),
                  {.headers = {"X-Custom: kept", "Connection: X-Secret", "X-Secret: dropped",
                               "Keep-Alive: timeout=5", "Authorization: Bearer abc"}});
  CHECK(r.status == 200);
  json entry = lastRecorded(model);
  CHECK(recordedHeader(entry, "X-Custom") == "kept");
  CHECK(recordedHeader(entry, "Authorization") == "Bearer abc");
  CHECK(recordedHeader(entry, "X-Secret").empty());
  CHECK(recordedHeader(entry, "Keep-Alive").empty());
  CHECK(recordedHeader(entry, "Host") == "127.0.0.1:" + std::to_string(agent.port()));
}

TEST_CASE("X-Forwarded-For is appended and a Forwarded header synthesised", "[proxy]") {
  ModelServer model;
  Agent agent(model.port());
  httpRequest(agent.url("/a"));
  CHECK(recordedHeader(lastRecorded(model), "X-Forwarded-For") == "127.0.0.1");
  httpRequest(agent.url("/b"),
              {.headers = {"X-Forwarded-For: 10.1.2.3, 2001:db8::1", "X-Forwarded-Proto: https"}});
  json entry = lastRecorded(model);
  CHECK(recordedHeader(entry, "X-Forwarded-For") == "10.1.2.3, 2001:db8::1, 127.0.0.1");
  CHECK(recordedHeader(entry, "Forwarded") == "for=10.1.2.3;proto=https, for=\"[2001:db8::1]\"");
}

TEST_CASE("HEAD, 204 and 304 responses carry no body and keep the connection usable", "[proxy]") {
  ModelServer model;
  Agent agent(model.port());
  RawSocket socket(agent.port());
  REQUIRE(
      socket.send("HEAD /echo?size=5000 HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /echo?status=204 HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /echo?status=304 HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /echo?size=3 HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string stream = socket.readUntil([](const std::string& s) {
    return s.find("HTTP/1.1 200", s.find("304")) != std::string::npos && s.size() >= 3 &&
           s.find("\r\n\r\n", s.rfind("HTTP/1.1 200")) + 7 <= s.size();
  });
  CHECK(stream.find("HTTP/1.1 200 OK\r\n") == 0);
  CHECK_THAT(stream, Catch::Contains("Content-Length: 5000"));
  CHECK_THAT(stream, Catch::Contains("HTTP/1.1 204"));
  CHECK_THAT(stream, Catch::Contains("HTTP/1.1 304"));
  std::string tail = stream.substr(stream.rfind("HTTP/1.1 200"));
  CHECK(tail.substr(tail.find("\r\n\r\n") + 4) == std::string("\x00\x01\x02", 3));
}

TEST_CASE("204 and 304 answers lose the headers Go's server leaves out", "[proxy]") {
  ModelServer model;
  Agent agent(model.port());
  HttpResponse empty = httpRequest(agent.url("/echo?status=204&header=Content-Length:0"));
  CHECK(empty.status == 204);
  CHECK(empty.header("content-length").empty());
  HttpResponse unchanged = httpRequest(agent.url("/echo?status=304&header=Content-Length:10"));
  CHECK(unchanged.status == 304);
  CHECK(unchanged.header("content-length").empty());
  CHECK(unchanged.header("content-type").empty());
  CHECK(httpRequest(agent.url("/echo?size=3")).body.size() == 3);
}

TEST_CASE("502 with the cause when the model server is down, recovery when it is back", "[proxy]") {
  uint16_t modelPort = freePort();
  Agent agent(modelPort);
  HttpResponse down = httpRequest(agent.url("/v1/models/m"));
  CHECK(down.status == 502);
  CHECK_THAT(down.body, Catch::Contains("connection refused"));
  CHECK(down.header("content-type") == "text/plain; charset=utf-8");

  ModelServer model({}, modelPort);
  HttpResponse up = httpRequest(agent.url("/v1/models/m"));
  CHECK(up.status == 200);

  model.stop();
  HttpResponse again = httpRequest(agent.url("/v1/models/m"));
  CHECK(again.status == 502);
  ModelServer back({}, modelPort);
  CHECK(httpRequest(agent.url("/v1/models/m")).status == 200);
}

TEST_CASE("a model server that resets mid-response closes the client connection", "[proxy]") {
  ModelServer model;
  Agent agent(model.port());
  RawSocket socket(agent.port());
  REQUIRE(socket.send("GET /reset HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string got = socket.readAll(5s);
  CHECK_THAT(got, Catch::StartsWith("HTTP/1.1 200"));
  CHECK(got.size() < 1000);  // the promised 100000 bytes never came: the client sees it end
  CHECK(httpRequest(agent.url("/ok")).status == 200);
}

TEST_CASE("a client that disconnects mid-response leaves the agent healthy", "[proxy]") {
  ModelServer model;
  Agent agent(model.port());
  for (int i = 0; i < 5; ++i) {
    RawSocket socket(agent.port());
    REQUIRE(socket.send("GET /echo?size=50000000 HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string part = socket.readUntil([](const std::string& s) { return s.size() > 100000; });
    CHECK(part.size() > 100000);
    socket.close();
  }
  // The model server's aborted exchanges do not poison the pool: fresh requests succeed.
  for (int i = 0; i < 10; ++i) {
    HttpResponse r = httpRequest(agent.url("/echo?size=1000"));
    REQUIRE(r.status == 200);
    CHECK(r.body.size() == 1000);
  }
  CHECK(agent.process().running());
}

TEST_CASE("a client that disconnects while waiting cancels the upstream request", "[proxy]") {
  ModelServer model;
  Agent agent(model.port());
  {
    RawSocket socket(agent.port());
    REQUIRE(socket.send("GET /echo?delay_ms=1500 HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::this_thread::sleep_for(200ms);
  }
  HttpResponse r = httpRequest(agent.url("/after"));
  CHECK(r.status == 200);
  CHECK(agent.process().running());
}

TEST_CASE("Expect: 100-continue gets an interim answer before the body is sent", "[proxy]") {
  ModelServer model;
  Agent agent(model.port());
  RawSocket socket(agent.port());
  REQUIRE(
      socket.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                  "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  std::string interim = socket.readUntil(
      [](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; }, 5s);
  CHECK(interim == "HTTP/1.1 100 Continue\r\n\r\n");
  REQUIRE(socket.send("hello"));
  std::string answer =
      socket.readUntil([](const std::string& s) { return countResponses(s) == 1; });
  CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 200"));
  CHECK_THAT(answer, Catch::EndsWith("hello"));
}

TEST_CASE("Upgrade requests are tunnelled after 101 Switching Protocols", "[proxy]") {
  ModelServer model;
  Agent agent(model.port());
  RawSocket socket(agent.port());
  REQUIRE(
      socket.send("GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                  "Upgrade: echo\r\n\r\n"));
  std::string head = socket.readUntil(
      [](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; });
  CHECK_THAT(head, Catch::StartsWith("HTTP/1.1 101"));
  CHECK_THAT(head, Catch::Contains("Upgrade: echo"));
  REQUIRE(socket.send("ping over the tunnel"));
  std::string echoed =
      socket.readUntil([](const std::string& s) { return s.find("tunnel") != std::string::npos; });
  CHECK(echoed == "ping over the tunnel");
}

TEST_CASE("server-sent events are relayed as they are produced", "[proxy]") {
  ModelServer model;
  Agent agent(model.port());
  RawSocket socket(agent.port());
  REQUIRE(socket.send("GET /sse?n=3&interval_ms=700 HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto start = std::chrono::steady_clock::now();
  std::string first =
      socket.readUntil([](const std::string& s) { return s.find("event 0") != std::string::npos; });
  auto firstAt = std::chrono::steady_clock::now() - start;
  CHECK_THAT(first, Catch::Contains("text/event-stream"));
  // The stream takes over two seconds; the first event must not wait for its end.
  CHECK(firstAt < 1500ms);
  std::string rest = socket.readUntil(
      [](const std::string& s) { return s.find("0\r\n\r\n") != std::string::npos; });
  CHECK_THAT(first + rest, Catch::Contains("event 2"));
}

TEST_CASE("trailers of chunked bodies are relayed both ways and framing fields among them are not",
          "[proxy]") {
  ModelServer model;
  Agent agent(model.port());
  RawSocket socket(agent.port());
  const std::string request =
      "POST /echo?chunked=1&trailer=X-Checksum:abc&trailer=Content-Length:99"
      "&announce=X-Checksum HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
      "Trailer: X-Digest\r\n\r\n5\r\nhello\r\n0\r\nX-Digest: d1\r\nHost: evil\r\n\r\n";
  auto ends = [](const std::string& s) {
    return s.find("\r\n0\r\n") != std::string::npos && s.ends_with("\r\n\r\n");
  };
  REQUIRE(socket.send(request));
  std::string response = socket.readUntil(ends, 5s);
  INFO(response);
  CHECK_THAT(response, Catch::StartsWith("HTTP/1.1 200"));
  std::string head = response.substr(0, response.find("\r\n\r\n") + 2);
  CHECK_THAT(head, Catch::Contains("\r\nTrailer: X-Checksum\r\n"));
  CHECK_THAT(head, Catch::Contains("Transfer-Encoding: chunked"));
  CHECK(response.ends_with("\r\n0\r\nX-Checksum: abc\r\n\r\n"));
  json entry = lastRecorded(model);
  CHECK(entry["trailers"] == json::array({json::array({"X-Digest", "d1"})}));
  CHECK(recordedHeader(entry, "Trailer") == "X-Digest");
  CHECK(recordedHeader(entry, "Host") == "x");

  // The connection goes on: the trailer section ended both messages where it should.
  REQUIRE(socket.send(request));
  std::string again = socket.readUntil(ends, 5s);
  CHECK(again.ends_with("\r\n0\r\nX-Checksum: abc\r\n\r\n"));
  CHECK(model.recordedLines().size() == 2);

  // An HTTP/1.0 client gets no chunks, so neither trailers nor their announcement.
  RawSocket old(agent.port());
  REQUIRE(
      old.send("GET /echo?size=5&chunked=1&trailer=X-Checksum:abc&announce=X-Checksum "
               "HTTP/1.0\r\n\r\n"));
  std::string close = old.readAll(5s);
  CHECK_THAT(close, Catch::StartsWith("HTTP/1.1 200"));
  CHECK(close.find("Trailer") == std::string::npos);
  CHECK(close.find("X-Checksum") == std::string::npos);
  CHECK(close.substr(close.find("\r\n\r\n") + 4).size() == 5);
}

TEST_CASE("an absolute-form target reaches the model server as a path with its authority as Host",
          "[proxy]") {
  ModelServer model;
  Agent agent(model.port());
  RawSocket socket(agent.port());
  REQUIRE(socket.send("GET http://models.test:81/echo?size=3 HTTP/1.1\r\nHost: other\r\n\r\n"));
  std::string response = socket.readUntil([](const std::string& s) {
    size_t end = s.find("\r\n\r\n");
    return end != std::string::npos && s.size() >= end + 4 + 3;
  });
  CHECK_THAT(response, Catch::StartsWith("HTTP/1.1 200"));
  json entry = lastRecorded(model);
  CHECK(entry["path"] == "/echo?size=3");
  CHECK(recordedHeader(entry, "Host") == "models.test:81");
  REQUIRE(socket.send("GET ftp://models.test/echo HTTP/1.1\r\nHost: other\r\n\r\n"));
  std::string refused = socket.readAll(5s);
  CHECK_THAT(refused,
             Catch::StartsWith("HTTP/1.1 400") && Catch::Contains("invalid request target"));
  CHECK(model.recordedLines().size() == 1);
}

namespace {

// tests/support/h2c_peer.js as an HTTP/2 (h2c) model server on a free port.
struct H2cServer {
  H2cServer()
      : port(freePort()),
        process({"/usr/bin/env", "node", sourcePath("tests/support/h2c_peer.js"), "server",
                 "--port", std::to_string(port)}) {
    REQUIRE(waitForPort(port, 15s));
  }
  uint16_t port;
  Process process;
};

}  // namespace

TEST_CASE("HTTP/2 with prior knowledge (gRPC) passes through to an h2c model server",
          "[proxy][h2c]") {
  H2cServer model;
  Agent agent(model.port, {"--enable-batcher", "--log-url", "http://127.0.0.1:1/"});
  Process client({"/usr/bin/env", "node", sourcePath("tests/support/h2c_peer.js"), "client",
                  "--url", agent.url(""), "--streams", "20", "--body-bytes", "300000"});
  REQUIRE(client.wait(30s) == 0);
  std::string output = client.output();
  INFO(output);
  json summary = json::parse(output.substr(output.find('{')));
  REQUIRE(summary["results"].size() == 20);
  for (size_t i = 0; i < 20; ++i) {
    const json& result = summary["results"][i];
    CHECK(result["status"] == 200);
    CHECK(result["path"] == "/inference.GRPCInferenceService/ModelInfer/" + std::to_string(i));
    CHECK(result["bodyOk"] == true);
    CHECK(result["trailers"]["grpc-status"] == "0");
    CHECK(result["trailers"]["x-body-bytes"] == "300000");
  }

  // A preface split across reads is still recognised; the model server's SETTINGS come back.
  RawSocket raw(agent.port());
  REQUIRE(raw.send("PRI * HTT"));
  std::this_thread::sleep_for(50ms);
  static constexpr char kRest[] = "P/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";  // and SETTINGS
  REQUIRE(raw.send(std::string(kRest, sizeof kRest - 1)));
  std::string frames = raw.readUntil([](const std::string& s) { return s.size() >= 9; }, 5s);
  REQUIRE(frames.size() >= 9);
  CHECK(frames[3] == '\x04');  // a SETTINGS frame
  // HTTP/1.1 on other connections is untouched: the h2c server refuses it, the agent says so.
  HttpResponse http1 = httpRequest(agent.url("/v1/models/m"));
  CHECK(http1.status == 502);

  // A drain does not wait for HTTP/2 connections (Go's h2c handler hijacks them): SIGTERM with
  // one still open exits well within --drain-timeout (30 s).
  auto stopping = std::chrono::steady_clock::now();
  CHECK(agent.terminate(10s) == 0);
  CHECK(std::chrono::steady_clock::now() - stopping < 5s);
  CHECK(raw.closedByPeer(5s));

  // No model server: the HTTP/2 client's connection closes at once (an HTTP/1.1 502 would mean
  // nothing to it), and the agent stays up.
  Agent orphan(freePort());
  RawSocket refused(orphan.port());
  REQUIRE(refused.send(std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")));
  CHECK(refused.closedByPeer(5s));
  CHECK(httpRequest(orphan.url("/")).status == 502);
}

TEST_CASE("HTTP/1.0 clients get close-delimited answers", "[proxy]") {
  ModelServer model;
  Agent agent(model.port());
  RawSocket socket(agent.port());
  REQUIRE(socket.send("GET /echo?size=10&chunked=1 HTTP/1.0\r\n\r\n"));
  std::string all = socket.readAll(5s);
  CHECK_THAT(all, Catch::StartsWith("HTTP/1.1 200"));
  CHECK(all.find("chunked") == std::string::npos);
  CHECK(all.substr(all.find("\r\n\r\n") + 4).size() == 10);
}

namespace {

// A model server that does not accept yet: a listener whose one-place accept queue is taken, so
// the agent's dial waits for a SYN retransmit (a second or so). Hand-made, as no real server
// lets a test hold its accept queue full.
class SlowListener {
 public:
  SlowListener() {
    fd_ = listenOnLoopback(0, port_);
    REQUIRE(fd_ >= 0);
    filler_ = std::make_unique<RawSocket>(port_);
  }
  ~SlowListener() { ::close(fd_); }
  uint16_t port() const { return port_; }
  // Takes the filler off the queue, then accepts the next connection (-1 after `timeout`).
  int acceptAfterFiller(std::chrono::milliseconds timeout) {
    ::close(acceptOne(timeout));
    return acceptOne(timeout);
  }

 private:
  int acceptOne(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return -1;
    return ::accept(fd_, nullptr, nullptr);
  }
  int fd_ = -1;
  uint16_t port_ = 0;
  std::unique_ptr<RawSocket> filler_;
};

// Reads one request with a Content-Length body from `fd`; its body ("" on timeout or EOF).
std::string readRequestBody(int fd, std::chrono::milliseconds timeout) {
  std::string data;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[65536];
  while (std::chrono::steady_clock::now() < deadline) {
    size_t headEnd = data.find("\r\n\r\n");
    if (headEnd != std::string::npos) {
      std::string head = data.substr(0, headEnd);
      size_t at = head.find("Content-Length: ");
      if (at == std::string::npos) return "";
      size_t length = std::stoul(head.substr(at + 16));
      if (data.size() - headEnd - 4 >= length) return data.substr(headEnd + 4, length);
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) != 1) continue;
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) return "";
    data.append(buffer, static_cast<size_t>(n));
  }
  return "";
}

}  // namespace

TEST_CASE("a body over the high-water mark that arrives while the agent dials is forwarded whole",
          "[proxy]") {
  SlowListener model;
  Agent agent(model.port());
  std::string body = randomBytes(3 << 20, 11);
  HttpResponse response;
  std::thread client(
      [&] { response = httpRequest(agent.url("/predict"), {.method = "POST", .body = body}); });
  // Meanwhile the agent reads more than 1 MiB of the body and pauses the client until the
  // connection is up and that part is written.
  std::this_thread::sleep_for(300ms);
  int connection = model.acceptAfterFiller(10s);
  REQUIRE(connection >= 0);
  std::string received = readRequestBody(connection, 20s);
  std::string answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
  CHECK(::write(connection, answer.data(), answer.size()) == static_cast<ssize_t>(answer.size()));
  client.join();
  ::close(connection);
  CHECK(received.size() == body.size());
  CHECK(received == body);
  CHECK(response.status == 200);
  CHECK(response.body == "ok");
}

TEST_CASE("concurrent clients get their own answers byte-exact with and without io_uring sends",
          "[proxy]") {
  ModelServer model;
  for (const char* flag : {"--io-uring=true", "--io-uring=false"}) {
    INFO(flag);
    Agent agent(model.port(), {flag});
    // Sixteen keep-alive clients at once: the agent's poll phases hold answers for several of
    // them, sent together.
    std::vector<std::thread> clients;
    std::vector<int> right(16, 0);
    for (int c = 0; c < 16; ++c) {
      clients.emplace_back([&agent, &right, c] {
        RawSocket socket(agent.port());
        for (int i = 0; i < 40 && socket.connected(); ++i) {
          std::string body = randomBytes(static_cast<size_t>(1 + (c * 40 + i) * 37 % 20000),
                                         static_cast<unsigned>(c * 1000 + i));
          socket.send(
              "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: "
              "application/octet-stream\r\nContent-Length: " +
              std::to_string(body.size()) + "\r\n\r\n" + body);
          std::string answer =
              socket.readUntil([](const std::string& s) { return countResponses(s) == 1; });
          if (answer.size() > body.size() &&
              answer.compare(answer.size() - body.size(), body.size(), body) == 0) {
            ++right[c];
          }
        }
      });
    }
    for (auto& client : clients)
      client.join();
    for (int c = 0; c < 16; ++c)
      CHECK(right[c] == 40);
    CHECK(httpRequest(agent.url("/stats")).status == 200);
  }
}
