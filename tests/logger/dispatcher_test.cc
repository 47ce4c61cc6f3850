#include "logger/dispatcher.h"

#include <catch2/catch.hpp>
#include <set>

#include "core/uv/timer.h"
#include "tests/logger/helpers.h"

using namespace std::chrono_literals;
using logger::DropReason;
using logtest::Loop;
using logtest::Sink;

namespace {

logger::EventPtr makeEvent(const std::string& id, std::string body,
                           std::string contentType = "application/json") {
  auto event = std::make_unique<logger::Event>();
  event->record.id = id;
  event->record.time = std::chrono::system_clock::now();
  event->record.recorded = event->record.time;
  event->record.contentType = std::move(contentType);
  event->body = std::make_shared<const std::string>(std::move(body));
  return event;
}

logger::DispatcherOptions optionsFor(const std::string& url) {
  logger::DispatcherOptions options;
  options.url = url;
  options.attributes = {"test-source", "isvc", "ns", "predictor", "default", ""};
  options.workers = 1;
  options.timeout = 2s;
  options.backoff = {.first = 50ms, .cap = 400ms};
  return options;
}

}  // namespace

TEST_CASE("Connection errors, 408, 429 and 5xx are retried, other answers are not", "[logger]") {
  CHECK(logger::isRetryable(0));
  CHECK(logger::isRetryable(503));
  CHECK(logger::isRetryable(500));
  CHECK(logger::isRetryable(429));
  CHECK(logger::isRetryable(408));
  CHECK_FALSE(logger::isRetryable(400));
  CHECK_FALSE(logger::isRetryable(404));
  CHECK_FALSE(logger::isRetryable(200));
}

TEST_CASE("The byte budget bounds leases and takes back what they release", "[logger]") {
  auto budget = std::make_shared<logger::ByteBudget>(100);
  {
    logger::ByteLease a(budget);
    CHECK(a.grow(60));
    logger::ByteLease b(budget);
    CHECK_FALSE(b.grow(41));
    CHECK(b.grow(40));
    CHECK(budget->used() == 100);
    logger::ByteLease moved = std::move(a);
    CHECK(moved.bytes() == 60);
    CHECK(a.bytes() == 0);
    moved.reset();
    CHECK(budget->used() == 40);
    // Bytes already held (copies for a write) count beyond the limit, and leave no room.
    logger::ByteLease copies(budget);
    copies.hold(90);
    CHECK(budget->used() == 130);
    logger::ByteLease c(budget);
    CHECK_FALSE(c.grow(1));
    copies.reset();
    CHECK(c.grow(60));
  }
  CHECK(budget->used() == 0);
}

TEST_CASE("Events reach a CloudEvents consumer with exact headers and bodies", "[logger]") {
  Sink sink;
  Loop loop;
  {
    logger::Dispatcher dispatcher(loop.get(), optionsFor(sink.url("/events?x=1")), nullptr);
    std::string binary = logtest::patternBytes(70000);
    CHECK(dispatcher.enqueue(makeEvent("json-1", R"({"instances":[[1,2]]})")));
    CHECK(dispatcher.enqueue(makeEvent("bin-2", binary, "application/octet-stream")));
    CHECK(dispatcher.enqueue(makeEvent("empty-3", "", "")));
    REQUIRE(loop.runUntil([&] { return dispatcher.stats().sent == 3; }));
    auto events = sink.waitForEvents(3);
    REQUIRE(events.size() == 3);
    CHECK(events[0]["id"] == "json-1");
    CHECK(events[0]["type"] == "org.kubeflow.serving.inference.request");
    CHECK(events[0]["source"] == "test-source");
    CHECK(events[0]["specversion"] == "1.0");
    CHECK(events[0]["datacontenttype"] == "application/json");
    CHECK(events[0]["extensions"]["inferenceservicename"] == "isvc");
    CHECK(events[0]["extensions"]["namespace"] == "ns");
    CHECK(events[0]["extensions"]["component"] == "predictor");
    CHECK(events[0]["extensions"]["endpoint"] == "default");
    CHECK(events[0]["extensions"]["metadata"] == "{}");
    CHECK(logtest::eventBody(events[0]) == R"({"instances":[[1,2]]})");
    CHECK(logtest::eventBody(events[1]) == binary);
    CHECK(logtest::eventBody(events[2]).empty());
    CHECK_FALSE(logtest::hasEventHeader(events[2], "content-type"));
    CHECK(logtest::eventHeader(events[2], "content-length") == "0");
    CHECK_FALSE(logtest::hasEventHeader(events[0], "expect"));
    CHECK(logtest::eventHeader(events[0], "user-agent") == "kserve-agent");
    // Keep-alive: one connection served every event.
    CHECK(events[0]["remotePort"] == events[1]["remotePort"]);
    CHECK(events[1]["remotePort"] == events[2]["remotePort"]);
  }
  CHECK(loop.close());
}

TEST_CASE("A sink answering 503 for a while gets the events once it recovers", "[logger]") {
  Sink sink(logtest::failingFirst(3));
  Loop loop;
  {
    auto options = optionsFor(sink.url());
    options.attempts = 5;
    logger::Dispatcher dispatcher(loop.get(), options, nullptr);
    dispatcher.enqueue(makeEvent("a", "1"));
    dispatcher.enqueue(makeEvent("b", "2"));
    REQUIRE(loop.runUntil([&] { return dispatcher.stats().sent == 2; }));
    CHECK(dispatcher.stats().retried == 3);
    CHECK(dispatcher.stats().dropped == 0);
    auto events = sink.waitForEvents(2);
    REQUIRE(events.size() == 2);
    // Pipelined retries may overtake each other: no order is promised.
    std::set<std::string> ids{events[0]["id"], events[1]["id"]};
    CHECK(ids == std::set<std::string>{"a", "b"});
  }
  CHECK(loop.close());
}

TEST_CASE("Retries are bounded: an event failing every attempt is dropped", "[logger]") {
  Sink sink(logtest::failingFirst(100, 500));
  Loop loop;
  {
    auto options = optionsFor(sink.url());
    options.attempts = 3;
    logger::Dispatcher dispatcher(loop.get(), options, nullptr);
    dispatcher.enqueue(makeEvent("doomed", "x"));
    REQUIRE(loop.runUntil([&] { return dispatcher.stats().dropped == 1; }));
    CHECK(dispatcher.stats().retried == 2);
    CHECK(dispatcher.stats().droppedBy[DropReason::Failed] == 1);
    CHECK(dispatcher.stats().depth == 0);
  }
  CHECK(loop.close());
}

TEST_CASE("A 4xx answer is not retried", "[logger]") {
  Sink sink(logtest::failingFirst(100, 400));
  Loop loop;
  {
    logger::Dispatcher dispatcher(loop.get(), optionsFor(sink.url()), nullptr);
    dispatcher.enqueue(makeEvent("bad", "x"));
    REQUIRE(loop.runUntil([&] { return dispatcher.stats().dropped == 1; }));
    CHECK(dispatcher.stats().retried == 0);
    CHECK(dispatcher.stats().droppedBy[DropReason::Rejected] == 1);
  }
  CHECK(loop.close());
}

TEST_CASE("Events wait while the sink is down and are delivered when it comes up", "[logger]") {
  uint16_t port = testsupport::freePort();
  Loop loop;
  {
    auto options = optionsFor("http://127.0.0.1:" + std::to_string(port) + "/");
    options.attempts = 20;
    options.workers = 2;
    logger::Dispatcher dispatcher(loop.get(), options, nullptr);
    for (int i = 0; i < 6; ++i)
      dispatcher.enqueue(makeEvent("e" + std::to_string(i), "b"));
    loop.runFor(600ms);
    CHECK(dispatcher.stats().sent == 0);
    CHECK(dispatcher.stats().retried > 0);
    CHECK(dispatcher.stats().depth == 6);
    Sink sink(logtest::onPort(port));
    REQUIRE(loop.runUntil([&] { return dispatcher.stats().sent == 6; }));
    CHECK(dispatcher.stats().dropped == 0);
    CHECK(sink.waitForEvents(6).size() == 6);
  }
  CHECK(loop.close());
}

TEST_CASE("A slow sink times out, the event is retried, the loop never blocks", "[logger]") {
  Sink sink(logtest::delayed(1500));
  Loop loop;
  {
    auto options = optionsFor(sink.url());
    options.timeout = 200ms;
    options.attempts = 2;
    logger::Dispatcher dispatcher(loop.get(), options, nullptr);
    dispatcher.enqueue(makeEvent("slow", "x"));
    // A timer on the same loop keeps ticking while the delivery waits.
    int ticks = 0;
    auto start = std::chrono::steady_clock::now();
    core::Timer ticker(loop.get());
    std::function<void()> tick = [&] {
      ++ticks;
      ticker.start(10ms, tick);
    };
    ticker.start(10ms, tick);
    REQUIRE(loop.runUntil([&] { return dispatcher.stats().dropped == 1; }, 10s));
    auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(elapsed < 1500ms);
    CHECK(ticks >= 20);
    CHECK(dispatcher.stats().retried == 1);
    CHECK(dispatcher.stats().droppedBy[DropReason::Failed] == 1);
  }
  CHECK(loop.close());
}

TEST_CASE("A full queue drops new events and counts them", "[logger]") {
  Sink sink(logtest::delayed(300));
  Loop loop;
  {
    auto options = optionsFor(sink.url());
    options.maxEvents = 3;
    logger::Dispatcher dispatcher(loop.get(), options, nullptr);
    int accepted = 0;
    for (int i = 0; i < 10; ++i)
      accepted += dispatcher.enqueue(makeEvent(std::to_string(i), "b"));
    CHECK(accepted == 3);
    CHECK(dispatcher.stats().droppedBy[DropReason::QueueFull] == 7);
    CHECK(dispatcher.stats().depth == 3);
    REQUIRE(loop.runUntil([&] { return dispatcher.stats().sent == 3; }));
    CHECK(dispatcher.stats().depth == 0);
    CHECK(dispatcher.enqueue(makeEvent("later", "b")));
    REQUIRE(loop.runUntil([&] { return dispatcher.stats().sent == 4; }));
  }
  CHECK(loop.close());
}

TEST_CASE("Drain delivers everything queued, then reports done", "[logger]") {
  Sink sink(logtest::delayed(20));
  Loop loop;
  {
    auto options = optionsFor(sink.url());
    options.workers = 3;
    logger::Dispatcher dispatcher(loop.get(), options, nullptr);
    for (int i = 0; i < 30; ++i)
      dispatcher.enqueue(makeEvent("d" + std::to_string(i), "b"));
    bool done = false;
    dispatcher.drain(std::chrono::steady_clock::now() + 20s, [&] { done = true; });
    CHECK_FALSE(done);
    REQUIRE(loop.runUntil([&] { return done; }));
    CHECK(dispatcher.stats().sent == 30);
    CHECK(sink.events().size() == 30);
    CHECK_FALSE(dispatcher.enqueue(makeEvent("after", "b")));
    CHECK(dispatcher.stats().droppedBy[DropReason::Shutdown] == 1);
  }
  CHECK(loop.close());
}

TEST_CASE("Drain gives up at its deadline and counts what is left", "[logger]") {
  uint16_t port = testsupport::freePort();
  Loop loop;
  {
    auto options = optionsFor("http://127.0.0.1:" + std::to_string(port) + "/");
    options.attempts = 1000;
    logger::Dispatcher dispatcher(loop.get(), options, nullptr);
    for (int i = 0; i < 4; ++i)
      dispatcher.enqueue(makeEvent("s" + std::to_string(i), "b"));
    bool done = false;
    auto start = std::chrono::steady_clock::now();
    dispatcher.drain(start + 300ms, [&] { done = true; });
    REQUIRE(loop.runUntil([&] { return done; }, 5s));
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    CHECK(dispatcher.stats().droppedBy[DropReason::Shutdown] == 4);
    CHECK(dispatcher.stats().depth == 0);
  }
  CHECK(loop.close());
}

TEST_CASE("Drain with nothing queued is done at once", "[logger]") {
  Loop loop;
  {
    logger::Dispatcher dispatcher(loop.get(), optionsFor("http://127.0.0.1:9/"), nullptr);
    bool done = false;
    dispatcher.drain(std::chrono::steady_clock::now() + 10s, [&] { done = true; });
    CHECK(done);
  }
  CHECK(loop.close());
}
