#include "logger/pipeline.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <thread>

#include "logger/dispatcher.h"
#include "tests/logger/helpers.h"
#include "tests/support/net.h"

using namespace std::chrono_literals;
using logtest::Loop;
using logtest::Sink;

namespace {

logger::EventPtr makeEvent(const std::string& id, std::string body) {
  auto event = std::make_unique<logger::Event>();
  event->record.id = id;
  event->record.time = std::chrono::system_clock::now();
  event->record.recorded = event->record.time;
  event->record.contentType = "application/octet-stream";
  event->body = std::make_shared<const std::string>(std::move(body));
  return event;
}

// Bodies of every kind: empty, small, with CRLFs and a fake request inside, and larger than
// what is copied next to the head.
std::string bodyFor(int i) {
  switch (i % 5) {
    case 0:
      return "";
    case 1:
      return R"({"instances":[[)" + std::to_string(i) + "]]}";
    case 2:
      return "\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc" + std::to_string(i);
    case 3:
      return logtest::patternBytes(20000 + static_cast<size_t>(i));
    default:
      return logtest::patternBytes(70000 + static_cast<size_t>(i));
  }
}

logger::DispatcherOptions pipelined(const std::string& url) {
  logger::DispatcherOptions options;
  options.url = url;
  options.workers = 2;
  options.pipelineDepth = 32;
  options.timeout = 5s;
  options.backoff = {.first = 20ms, .cap = 200ms};
  return options;
}

// Hands out `source` in order, as the dispatcher's queue would.
logger::PipelineClient::Take takeFrom(std::deque<logger::Delivery>& source) {
  return [&source]() -> std::optional<logger::Delivery> {
    if (source.empty()) return std::nullopt;
    auto delivery = std::move(source.front());
    source.pop_front();
    return delivery;
  };
}

const logger::EventFormat& testFormat() {
  static const logger::EventFormat format(
      {"test-source", "isvc", "ns", "predictor", "default", ""});
  return format;
}

std::map<std::string, int> countIds(const std::vector<nlohmann::json>& events) {
  std::map<std::string, int> counts;
  for (const auto& event : events)
    ++counts[event["id"].get<std::string>()];
  return counts;
}

}  // namespace

TEST_CASE("http URLs are split for the pipelined client, others are left to curl", "[logger]") {
  auto plain = logger::parseHttpUrl("http://sink.ns.svc:8080/events?x=1#frag");
  REQUIRE(plain);
  CHECK(plain->host == "sink.ns.svc");
  CHECK(plain->port == 8080);
  CHECK(plain->authority == "sink.ns.svc:8080");
  CHECK(plain->target == "/events?x=1");
  auto bare = logger::parseHttpUrl("HTTP://127.0.0.1");
  REQUIRE(bare);
  CHECK(bare->port == 80);
  CHECK(bare->target == "/");
  auto query = logger::parseHttpUrl("http://h?q");
  REQUIRE(query);
  CHECK(query->target == "/?q");
  auto v6 = logger::parseHttpUrl("http://[::1]:9000/p");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->authority == "[::1]:9000");
  auto spaced = logger::parseHttpUrl("http://h/a b/\xc3\xa9?q=\"x\"");
  REQUIRE(spaced);
  CHECK(spaced->target == "/a%20b/%C3%A9?q=%22x%22");
  CHECK_FALSE(logger::parseHttpUrl("https://127.0.0.1/"));
  CHECK_FALSE(logger::parseHttpUrl("http://user:pw@127.0.0.1/"));
  CHECK_FALSE(logger::parseHttpUrl("http://127.0.0.1:99999/"));
  CHECK_FALSE(logger::parseHttpUrl("http://:80/"));
  CHECK_FALSE(logger::parseHttpUrl("gs://bucket/x"));
}

TEST_CASE("Pipelining: many events in flight on one connection arrive complete and byte-exact",
          "[logger]") {
  Sink sink(logtest::delayed(20));
  Loop loop;
  {
    constexpr int kEvents = 300;
    std::deque<logger::Delivery> source;
    for (int i = 0; i < kEvents; ++i)
      source.push_back({makeEvent("p" + std::to_string(i), bodyFor(i)), 0});
    std::vector<long> statuses;
    size_t mostInFlight = 0;
    logger::PipelineClient* self = nullptr;
    logger::PipelineClient client(
        loop.get(),
        logger::PipelineClient::Options{
            .sink = *logger::parseHttpUrl(sink.url("/ce")), .connections = 1, .depth = 64},
        testFormat(), takeFrom(source), [&](logger::Delivery, logger::PipelineResult result) {
          mostInFlight = std::max(mostInFlight, self->held() + 1);
          statuses.push_back(result.status);
        });
    self = &client;
    client.wake();
    REQUIRE(loop.runUntil([&] { return statuses.size() == kEvents; }));
    CHECK(statuses == std::vector<long>(kEvents, 202));
    CHECK(mostInFlight == 64);
    CHECK(client.connectionsOpened() == 1);
    CHECK(client.held() == 0);
    auto events = sink.waitForEvents(kEvents);
    REQUIRE(events.size() == kEvents);
    std::set<uint64_t> ports;
    for (const auto& event : events) {
      INFO(event.dump().substr(0, 300));
      CHECK_FALSE(event.contains("error"));
      int i = std::stoi(event["id"].get<std::string>().substr(1));
      CHECK(logtest::eventBody(event) == bodyFor(i));
      CHECK(logtest::eventHeader(event, "content-type") == "application/octet-stream");
      CHECK(logtest::eventHeader(event, "user-agent") == "kserve-agent");
      CHECK(event["type"] == "org.kubeflow.serving.inference.request");
      ports.insert(event["remotePort"].get<uint64_t>());
    }
    CHECK(ports.size() == 1);
    CHECK(countIds(events).size() == kEvents);
  }
  CHECK(loop.close());
}

namespace {

// As `localhost` in a pod (::1 first, then 127.0.0.1) with a sink that listens on IPv4 only.
sockaddr_storage loopbackAddress(const char* ip, uint16_t port) {
  sockaddr_storage address{};
  if (uv_ip4_addr(ip, port, reinterpret_cast<sockaddr_in*>(&address)) != 0) {
    REQUIRE(uv_ip6_addr(ip, port, reinterpret_cast<sockaddr_in6*>(&address)) == 0);
  }
  return address;
}

struct Delivered {
  std::vector<logger::PipelineResult> results;
};

// Sends `count` small events through a client with the given addresses; returns the results.
Delivered sendThrough(Loop& loop, const Sink& sink, std::vector<sockaddr_storage> addresses,
                      int count) {
  Delivered delivered;
  std::deque<logger::Delivery> source;
  for (int i = 0; i < count; ++i)
    source.push_back({makeEvent("a" + std::to_string(i), "b"), 0});
  auto sinkAddress = *logger::parseHttpUrl(sink.url("/ce"));
  sinkAddress.host = "sink.invalid";  // never resolved: the addresses are given
  logger::PipelineClient client(loop.get(),
                                logger::PipelineClient::Options{.sink = sinkAddress,
                                                                .connections = 1,
                                                                .timeout = 5s,
                                                                .backoff = {.first = 10s},
                                                                .addresses = std::move(addresses)},
                                testFormat(), takeFrom(source),
                                [&](logger::Delivery, logger::PipelineResult result) {
                                  delivered.results.push_back(std::move(result));
                                });
  client.wake();
  REQUIRE(loop.runUntil([&] { return delivered.results.size() >= 1 && client.held() == 0; }));
  return delivered;
}

}  // namespace

TEST_CASE("A sink refusing on its first address is reached on the next", "[logger]") {
  Sink sink;
  Loop loop;
  auto delivered = sendThrough(
      loop, sink, {loopbackAddress("::1", sink.port()), loopbackAddress("127.0.0.1", sink.port())},
      20);
  CHECK(loop.close());
  REQUIRE(delivered.results.size() == 20);
  for (const auto& result : delivered.results) {
    INFO(result.error);
    CHECK(result.status == 202);
  }
  CHECK(countIds(sink.waitForEvents(20)).size() == 20);
}

TEST_CASE("A sink refusing on every address fails with the last address's error", "[logger]") {
  Sink sink;
  Loop loop;
  auto delivered = sendThrough(
      loop, sink, {loopbackAddress("::1", sink.port()), loopbackAddress("::1", sink.port())}, 1);
  CHECK(loop.close());
  REQUIRE(delivered.results.size() == 1);
  CHECK(delivered.results[0].status == 0);
  CHECK(delivered.results[0].error.find("cannot connect to the sink") != std::string::npos);
  CHECK(sink.events().empty());
}

TEST_CASE("Copies of small bodies waiting to be written count against the byte budget",
          "[logger]") {
  // A sink that never reads: a listener whose connection is never accepted. The kernel takes
  // a few MiB; the rest of 24 MiB of 12 KiB bodies (copied next to their heads) waits in the
  // agent, and is counted.
  uint16_t port = 0;
  int listener = testsupport::listenOnLoopback(4, port);
  REQUIRE(listener >= 0);
  auto budget = std::make_shared<logger::ByteBudget>(size_t{64} << 20);
  Loop loop;
  {
    constexpr int kEvents = 2048;
    const std::string body(12 * 1024, 'b');
    std::deque<logger::Delivery> source;
    for (int i = 0; i < kEvents; ++i)
      source.push_back({makeEvent("w" + std::to_string(i), body), 0});
    logger::PipelineClient client(
        loop.get(),
        logger::PipelineClient::Options{
            .sink = *logger::parseHttpUrl("http://127.0.0.1:" + std::to_string(port) + "/"),
            .connections = 1,
            .depth = kEvents,
            .timeout = 30s,
            .budget = budget},
        testFormat(), takeFrom(source), [](logger::Delivery, logger::PipelineResult) {});
    client.wake();
    // One event while connecting, then the rest in one write.
    REQUIRE(loop.runUntil([&] { return source.empty(); }, 10s));
    loop.runFor(200ms);
    CHECK(budget->used() >= size_t{12} << 20);
    CHECK(budget->used() <= size_t{kEvents} * body.size());
  }
  // Closing the connection ends the writes and gives the copies back.
  CHECK(loop.close());
  CHECK(budget->used() == 0);
  ::close(listener);
}

TEST_CASE("A sink closing connections mid-pipeline loses no event", "[logger]") {
  Sink sink(logtest::closingAfter(7));
  Loop loop;
  {
    auto options = pipelined(sink.url());
    options.attempts = 20;
    logger::Dispatcher dispatcher(loop.get(), options, nullptr);
    constexpr int kEvents = 200;
    for (int i = 0; i < kEvents; ++i)
      REQUIRE(dispatcher.enqueue(makeEvent("c" + std::to_string(i), bodyFor(i))));
    REQUIRE(loop.runUntil([&] { return dispatcher.stats().sent == kEvents; }, 30s));
    CHECK(dispatcher.stats().dropped == 0);
    CHECK(dispatcher.stats().retried > 0);
    CHECK(dispatcher.stats().depth == 0);
    auto events = sink.waitForEvents(kEvents);
    auto counts = countIds(events);
    CHECK(counts.size() == kEvents);
    for (int i = 0; i < kEvents; ++i)
      CHECK(counts["c" + std::to_string(i)] >= 1);
    // Every copy is whole.
    for (const auto& event : events) {
      int i = std::stoi(event["id"].get<std::string>().substr(1));
      CHECK(logtest::eventBody(event) == bodyFor(i));
    }
  }
  CHECK(loop.close());
}

TEST_CASE("A sink answering 503 to some pipelined events gets those again", "[logger]") {
  Sink sink(logtest::failingFirst(10));
  Loop loop;
  {
    logger::Dispatcher dispatcher(loop.get(), pipelined(sink.url()), nullptr);
    constexpr int kEvents = 60;
    for (int i = 0; i < kEvents; ++i)
      dispatcher.enqueue(makeEvent("r" + std::to_string(i), bodyFor(i)));
    REQUIRE(loop.runUntil([&] { return dispatcher.stats().sent == kEvents; }));
    CHECK(dispatcher.stats().retried == 10);
    CHECK(dispatcher.stats().dropped == 0);
    auto counts = countIds(sink.waitForEvents(kEvents));
    CHECK(counts.size() == kEvents);
    for (const auto& [id, count] : counts)
      CHECK(count == 1);
  }
  CHECK(loop.close());
}

TEST_CASE("A pipelined 4xx is dropped, the other events of the pipeline are sent", "[logger]") {
  Sink sink(logtest::failingFirst(3, 400));
  Loop loop;
  {
    logger::Dispatcher dispatcher(loop.get(), pipelined(sink.url()), nullptr);
    for (int i = 0; i < 20; ++i)
      dispatcher.enqueue(makeEvent("x" + std::to_string(i), "b"));
    REQUIRE(loop.runUntil([&] { return dispatcher.stats().sent == 17; }));
    CHECK(dispatcher.stats().droppedBy[logger::DropReason::Rejected] == 3);
    CHECK(dispatcher.stats().retried == 0);
    CHECK(dispatcher.stats().depth == 0);
  }
  CHECK(loop.close());
}

TEST_CASE("A sink answering one event at a time loses nothing and gets a steady load spread",
          "[logger]") {
  // 50 ms per event, one at a time per connection. A burst of 40 is 2 s of answers on one
  // connection, more than the 1.5 s timeout: the timeout bounds the sink's silence, not the
  // wait behind earlier events. Then 5 events every 50 ms, more than one connection answers:
  // they go to the connections that are not behind.
  logtest::SinkOptions slow = logtest::delayed(50);
  slow.serial = true;
  Sink sink(slow);
  Loop loop;
  {
    auto options = pipelined(sink.url());
    options.workers = 4;
    options.pipelineDepth = 1024;
    options.timeout = 1500ms;
    options.attempts = 1;
    logger::Dispatcher dispatcher(loop.get(), options, nullptr);
    for (int i = 0; i < 40; ++i)
      dispatcher.enqueue(makeEvent("burst" + std::to_string(i), "b"));
    REQUIRE(loop.runUntil(
        [&] { return dispatcher.stats().sent + dispatcher.stats().dropped == 40; }, 20s));
    CHECK(dispatcher.stats().dropped == 0);
    for (int round = 0; round < 12; ++round) {
      for (int i = 0; i < 5; ++i)
        dispatcher.enqueue(makeEvent("steady" + std::to_string(round * 5 + i), "b"));
      loop.runFor(50ms);
    }
    REQUIRE(loop.runUntil(
        [&] { return dispatcher.stats().sent + dispatcher.stats().dropped == 100; }, 20s));
    CHECK(dispatcher.stats().sent == 100);
    CHECK(dispatcher.stats().dropped == 0);
  }
  CHECK(loop.close());
  std::set<uint64_t> steadyPorts;
  for (const auto& event : sink.waitForEvents(100)) {
    if (event["id"].get<std::string>().starts_with("steady")) {
      steadyPorts.insert(event["remotePort"].get<uint64_t>());
    }
  }
  CHECK(steadyPorts.size() >= 3);
}

TEST_CASE("A sink that closes after every answer gets one event per connection", "[logger]") {
  logtest::SinkOptions closing;
  closing.connectionClose = true;
  Sink sink(closing);
  Loop loop;
  {
    auto options = pipelined(sink.url());
    options.pipelineDepth = 1024;
    logger::Dispatcher dispatcher(loop.get(), options, nullptr);
    // What was in flight before the first answer said so goes out again; after that, nothing.
    for (int i = 0; i < 10; ++i)
      dispatcher.enqueue(makeEvent("c" + std::to_string(i), "b"));
    REQUIRE(loop.runUntil([&] { return dispatcher.stats().sent == 10; }, 20s));
    const uint64_t retriedBefore = dispatcher.stats().retried;
    for (int i = 10; i < 100; ++i)
      dispatcher.enqueue(makeEvent("c" + std::to_string(i), "b"));
    REQUIRE(loop.runUntil([&] { return dispatcher.stats().sent == 100; }, 20s));
    CHECK(dispatcher.stats().dropped == 0);
    CHECK(dispatcher.stats().retried == retriedBefore);
  }
  CHECK(loop.close());
  CHECK(countIds(sink.waitForEvents(100)).size() == 100);
}

TEST_CASE("A pipeline stuck behind a slow answer times out and is sent again", "[logger]") {
  Sink sink(logtest::delayed(700));
  Loop loop;
  {
    auto options = pipelined(sink.url());
    options.workers = 1;
    options.timeout = 300ms;
    options.attempts = 2;
    logger::Dispatcher dispatcher(loop.get(), options, nullptr);
    for (int i = 0; i < 5; ++i)
      dispatcher.enqueue(makeEvent("t" + std::to_string(i), "b"));
    REQUIRE(loop.runUntil([&] { return dispatcher.stats().dropped == 5; }, 10s));
    CHECK(dispatcher.stats().droppedBy[logger::DropReason::Failed] == 5);
    CHECK(dispatcher.stats().retried == 5);
    CHECK(dispatcher.stats().depth == 0);
  }
  CHECK(loop.close());
}

namespace {

// Accepts one connection, reads until `requests` request heads have arrived, then writes
// `answers` in pieces of 1 to 7 bytes (each its own send, with TCP_NODELAY), and waits for the
// client to close. A scripted peer, not a real sink: the test needs answers cut at every byte.
class ScriptedSink {
 public:
  ScriptedSink(int requests, std::string answers) {
    listener_ = testsupport::listenOnLoopback(4, port_);
    REQUIRE(listener_ >= 0);
    thread_ = std::thread([this, requests, answers = std::move(answers)] {
      int peer = ::accept(listener_, nullptr, nullptr);
      if (peer < 0) return;
      int one = 1;
      ::setsockopt(peer, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      std::string received;
      char buffer[4096];
      auto heads = [&] {
        size_t count = 0;
        for (size_t at = received.find("POST /"); at != std::string::npos;
             at = received.find("POST /", at + 1))
          ++count;
        return count;
      };
      while (heads() < static_cast<size_t>(requests)) {
        ssize_t n = ::read(peer, buffer, sizeof buffer);
        if (n <= 0) break;
        received.append(buffer, static_cast<size_t>(n));
      }
      for (size_t at = 0, piece = 1; at < answers.size(); at += piece, piece = piece % 7 + 1) {
        size_t size = std::min(piece, answers.size() - at);
        if (::send(peer, answers.data() + at, size, MSG_NOSIGNAL) != static_cast<ssize_t>(size)) {
          break;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      while (::read(peer, buffer, sizeof buffer) > 0) {
      }
      ::close(peer);
    });
  }
  ~ScriptedSink() {
    // Ends an accept still waiting (a client that never connected), so that the test fails
    // instead of hanging.
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
  }
  ScriptedSink(const ScriptedSink&) = delete;
  ScriptedSink& operator=(const ScriptedSink&) = delete;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }

 private:
  uint16_t port_ = 0;
  int listener_ = -1;
  std::thread thread_;
};

}  // namespace

TEST_CASE("Answers alike and answers that differ from the last by a byte are told apart",
          "[logger]") {
  // The client recognises an answer byte-identical to the last one parsed without parsing it;
  // answers that share its start, differ late, carry a body or arrive cut at any byte must
  // still be read as what they are.
  const std::string accepted = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
  const std::vector<std::pair<long, std::string>> script = {
      {202, accepted},
      {202, accepted},
      {201, "HTTP/1.1 201 Accepted\r\nContent-Length: 0\r\n\r\n"},
      {202, accepted},
      {202, "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok"},
      {202, "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok"},
      {202, accepted},
      {400, "HTTP/1.1 400 Accepted\r\nContent-Length: 0\r\n\r\n"},
      {202, "HTTP/1.1 100 Continue\r\n\r\n" + accepted},
      {202, accepted},
      {204, "HTTP/1.1 204 No Content\r\n\r\n"},
      {204, "HTTP/1.1 204 No Content\r\n\r\n"},
      {202, accepted},
  };
  std::string answers;
  std::vector<long> expected;
  for (const auto& [status, bytes] : script) {
    answers += bytes;
    expected.push_back(status);
  }
  ScriptedSink sink(static_cast<int>(script.size()), answers);
  Loop loop;
  {
    std::deque<logger::Delivery> source;
    for (size_t i = 0; i < script.size(); ++i)
      source.push_back({makeEvent("s" + std::to_string(i), "b"), 0});
    std::vector<long> statuses;
    logger::PipelineClient client(
        loop.get(),
        logger::PipelineClient::Options{
            .sink = *logger::parseHttpUrl(sink.url()), .connections = 1, .timeout = 10s},
        testFormat(), takeFrom(source), [&](logger::Delivery, logger::PipelineResult result) {
          CHECK(result.error.empty());
          statuses.push_back(result.status);
        });
    client.wake();
    REQUIRE(loop.runUntil([&] { return statuses.size() == script.size(); }));
    CHECK(statuses == expected);
    CHECK(client.connectionsOpened() == 1);
  }
  CHECK(loop.close());
}

TEST_CASE("http sinks are pipelined unless a proxy is configured", "[logger]") {
  CHECK(logger::Dispatcher::pipelines("http://127.0.0.1:1/"));
  CHECK_FALSE(logger::Dispatcher::pipelines("https://127.0.0.1:1/"));
  setenv("http_proxy", "http://127.0.0.1:3128", 1);
  CHECK_FALSE(logger::Dispatcher::pipelines("http://127.0.0.1:1/"));
  unsetenv("http_proxy");
}
