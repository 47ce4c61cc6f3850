// The server in the test process: a Listener and its client connections on a TestLoop, with a
// scripted terminal (its streams answer as each test says) and scripted filters, driven by raw
// sockets from a thread while the loop runs. What the client receives is compared byte for byte.
#include "core/server/server.h"

#include <unistd.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/uv/timer.h"
#include "tests/support/core_server.h"
#include "tests/support/loop.h"
#include "tests/support/net.h"

using namespace core;
using namespace std::chrono_literals;
using namespace testsupport;
using Clock = std::chrono::steady_clock;
using Log = std::vector<std::string>;

namespace {

// What one of the scripted terminal's streams saw; kept by the terminal, since a stream goes
// with its exchange.
struct StreamRecord {
  std::string target;
  std::string clientAddress;
  std::string body;       // request body bytes streamed to the stream
  bool buffered = false;  // a filter read the body whole (then `body` is that body)
  bool ended = false;     // the whole request was received
  bool cancelled = false;
  int drained = 0;  // onDownstreamDrained calls
  size_t sentBeforePause = 0;
};

class ScriptedStream;
using Step = std::function<void(ScriptedStream&)>;

// One exchange at the scripted terminal. The scripts it runs act on the exchange through
// `downstream` only while the stream is live: a cancelled stream's timer is stopped.
class ScriptedStream final : public TerminalStream {
 public:
  ScriptedStream(uv_loop_t* loop, Downstream& d, StreamRecord& r, Log& events, Step onEnd,
                 Step onDrained)
      : downstream(d),
        record(r),
        events_(events),
        onEnd_(std::move(onEnd)),
        onDrained_(std::move(onDrained)),
        timer_(loop) {}

  // Runs `step` on the loop after `delay`, unless the stream is cancelled first.
  void after(std::chrono::milliseconds delay, Step step) {
    timer_.start(delay, [this, step = std::move(step)] { step(*this); });
  }
  void reply(int status = 200) { downstream.replyWith(status, "text/plain", record.target); }
  // Starts a response without a length (chunked to HTTP/1.1 clients) announcing X-Sum.
  void startStreaming() {
    ResponseHead head;
    head.headers = {{"X-Stream", "yes"}};
    downstream.sendResponseHead(head, "X-Sum", false);
  }
  bool send(std::string_view data) { return downstream.sendResponseBody(data.data(), data.size()); }

  // The request was complete when the stream started (a filter read the body whole).
  void requestEnded() {
    if (record.ended) return;
    record.ended = true;
    events_.push_back("end " + record.target);
    if (onEnd_) onEnd_(*this);
  }

  // TerminalStream
  void onRequestBody(const char* data, size_t length) override { record.body.append(data, length); }
  void onRequestEnd() override { requestEnded(); }
  void onDownstreamDrained() override {
    ++record.drained;
    if (onDrained_) onDrained_(*this);
  }
  void cancel() override {
    record.cancelled = true;
    timer_.stop();
  }

  Downstream& downstream;
  StreamRecord& record;

 private:
  Log& events_;
  Step onEnd_;
  Step onDrained_;
  Timer timer_;
};

// A terminal whose streams run the test's scripts: `onEnd` once the whole request is in (by
// default, answer 200 with the target as the body), `onDrained` when the client's queue drains.
class ScriptedTerminal final : public Terminal {
 public:
  ScriptedTerminal(uv_loop_t* loop, Log& events) : loop_(loop), events_(events) {}

  TerminalStreamPtr start(Downstream& exchange) override {
    records.push_back(std::make_unique<StreamRecord>());
    StreamRecord& record = *records.back();
    record.target = exchange.request().target;
    record.clientAddress = exchange.clientAddress();
    events_.push_back("start " + record.target);
    auto stream =
        std::make_unique<ScriptedStream>(loop_, exchange, record, events_, onEnd, onDrained);
    if (std::string* body = exchange.bufferedBody(); body != nullptr) {
      record.buffered = true;
      record.body = *body;
    }
    if (exchange.requestReceived() && exchange.bufferedBody() != nullptr) stream->requestEnded();
    return stream;
  }

  Step onEnd = [](ScriptedStream& stream) { stream.reply(); };
  Step onDrained;
  std::deque<std::unique_ptr<StreamRecord>> records;

 private:
  uv_loop_t* loop_;
  Log& events_;
};

// A filter that answers its hooks as scripted and logs what it sees into the events.
class ScriptedFilter final : public Filter {
 public:
  ScriptedFilter(std::string name, Log& events) : name_(std::move(name)), events_(events) {}

  unsigned observes() const override {
    return kObserveRequestData | kObserveResponse | kObserveComplete;
  }
  Action onRequestHeaders(const ExchangePtr& exchange) override {
    events_.push_back(name_ + ":headers " + exchange->request().target);
    if (answer != 0) {
      exchange->replyError(answer, name_ + " says no");
      return Action::Handled;
    }
    return buffer ? Action::Buffer : Action::Continue;
  }
  Action onRequestBody(const ExchangePtr&, std::string& body) override {
    events_.push_back(name_ + ":body " + body);
    return Action::Continue;
  }
  void onRequestData(Exchange&, std::string_view chunk) override {
    events_.push_back(name_ + ":data " + std::string(chunk));
  }
  void onResponseHeaders(Exchange& exchange) override {
    events_.push_back(name_ + ":response " + std::to_string(exchange.response()->status));
  }
  void onResponseData(Exchange&, std::string_view chunk) override {
    events_.push_back(name_ + ":response-data " + std::string(chunk));
  }
  void onComplete(Exchange&, bool complete) override {
    events_.push_back(name_ + (complete ? ":complete" : ":incomplete"));
  }

  int answer = 0;  // answer with this status in onRequestHeaders
  bool buffer = false;

 private:
  std::string name_;
  Log& events_;
};

// Logs each finished exchange as "done <target> <status>".
class RecordingObserver final : public ServerObserver {
 public:
  explicit RecordingObserver(Log& events) : events_(events) {}
  void onExchangeDone(const Exchange& exchange, int status, Clock::duration) override {
    events_.push_back("done " + exchange.request().target + " " + std::to_string(status));
  }

 private:
  Log& events_;
};

// A server with a scripted terminal, its filters and an observer on one loop.
struct Rig {
  explicit Rig(TestLoop& loop, ServerLimits limits = {})
      : terminal(loop.get(), events), observer(events), server(loop, terminal, limits) {
    server.context.observer = &observer;
  }
  ScriptedFilter& addFilter(const std::string& name) {
    filters.push_back(std::make_unique<ScriptedFilter>(name, events));
    std::vector<Filter*> list;
    for (auto& filter : filters)
      list.push_back(filter.get());
    server.context.chain.setFilters(list);
    return *filters.back();
  }
  StreamRecord& record(size_t i) { return *terminal.records.at(i); }

  Log events;
  ScriptedTerminal terminal;
  RecordingObserver observer;
  std::vector<std::unique_ptr<ScriptedFilter>> filters;
  CoreServer server;
};

std::string request(const std::string& method, const std::string& target,
                    const std::string& extraHeaders = "", const std::string& body = "") {
  return method + " " + target + " HTTP/1.1\r\nHost: test\r\n" + extraHeaders + "\r\n" + body;
}

// A 200 answer with the target as its text/plain body, as the default script gives.
std::string okFor(const std::string& target) {
  return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
         std::to_string(target.size()) + "\r\n\r\n" + target;
}

bool endsWith(const std::string& text, std::string_view end) {
  return text.size() >= end.size() && text.compare(text.size() - end.size(), end.size(), end) == 0;
}

}  // namespace

TEST_CASE("a keep-alive connection answers pipelined requests in order, one at a time",
          "[core][server]") {
  TestLoop loop;
  {
    Rig rig(loop);
    rig.terminal.onEnd = [](ScriptedStream& stream) {
      // The first answer is the slowest: the others must still come after it.
      if (stream.record.target == "/slow") {
        stream.after(50ms, [](ScriptedStream& s) { s.reply(); });
      } else {
        stream.reply();
      }
    };
    std::string first;
    std::string second;
    REQUIRE(loop.runAlongside([&] {
      RawSocket socket(rig.server.port());
      socket.send(request("GET", "/slow") + request("GET", "/b") + request("GET", "/c"));
      first = socket.readUntil([](const std::string& d) { return countResponses(d) == 3; }, 5s);
      // The connection stays open for more.
      socket.send(request("GET", "/d"));
      second = socket.readUntil([](const std::string& d) { return countResponses(d) == 1; }, 5s);
    }));
    CHECK(first == okFor("/slow") + okFor("/b") + okFor("/c"));
    CHECK(second == okFor("/d"));
    CHECK(rig.server.context.stats.connectionsAccepted == 1);
    // The next exchange starts only once the one before it is done.
    CHECK(rig.events == Log{"start /slow", "end /slow", "done /slow 200", "start /b", "end /b",
                            "done /b 200", "start /c", "end /c", "done /c 200", "start /d",
                            "end /d", "done /d 200"});
    CHECK(rig.record(0).clientAddress == "127.0.0.1");
  }
  CHECK(loop.close());
}

TEST_CASE("a streamed response to HTTP/1.1 is chunked with its trailers, the connection stays",
          "[core][server]") {
  TestLoop loop;
  {
    Rig rig(loop);
    rig.terminal.onEnd = [](ScriptedStream& stream) {
      if (stream.record.target != "/stream") return stream.reply();
      stream.startStreaming();
      stream.send("hello ");
      stream.after(20ms, [](ScriptedStream& s) {
        s.send("world");
        s.downstream.endResponse({{"X-Sum", "11"}});
      });
    };
    std::string response;
    std::string next;
    REQUIRE(loop.runAlongside([&] {
      RawSocket socket(rig.server.port());
      socket.send(request("GET", "/stream", "TE: trailers\r\n"));
      response = socket.readUntil(
          [](const std::string& d) { return endsWith(d, "X-Sum: 11\r\n\r\n"); }, 5s);
      socket.send(request("GET", "/next"));
      next = socket.readUntil([](const std::string& d) { return countResponses(d) == 1; }, 5s);
    }));
    CHECK(response ==
          "HTTP/1.1 200 OK\r\nX-Stream: yes\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n"
          "6\r\nhello \r\n5\r\nworld\r\n0\r\nX-Sum: 11\r\n\r\n");
    CHECK(next == okFor("/next"));
  }
  CHECK(loop.close());
}

TEST_CASE("HTTP/1.0: a response without a length ends with the connection, unchunked",
          "[core][server]") {
  TestLoop loop;
  {
    Rig rig(loop);
    rig.terminal.onEnd = [](ScriptedStream& stream) {
      stream.startStreaming();
      stream.send("hello ");
      stream.after(20ms, [](ScriptedStream& s) {
        s.send("world");
        s.downstream.endResponse({{"X-Sum", "11"}});
      });
    };
    std::string response;
    bool closed = false;
    REQUIRE(loop.runAlongside([&] {
      RawSocket socket(rig.server.port());
      socket.send("GET /old HTTP/1.0\r\n\r\n");
      response = socket.readAll(5s);
      closed = socket.closedByPeer(1s);
    }));
    // No chunk framing, no Trailer announcement and no trailers: HTTP/1.0 has none.
    CHECK(response == "HTTP/1.1 200 OK\r\nX-Stream: yes\r\nConnection: close\r\n\r\nhello world");
    CHECK(closed);
  }
  CHECK(loop.close());
}

TEST_CASE("HTTP/1.0: answers have a length, the connection closes unless kept alive",
          "[core][server]") {
  TestLoop loop;
  {
    Rig rig(loop);
    std::string plain;
    std::string kept;
    bool plainClosed = false;
    REQUIRE(loop.runAlongside([&] {
      RawSocket socket(rig.server.port());
      socket.send("GET /plain HTTP/1.0\r\n\r\n");
      plain = socket.readAll(5s);
      plainClosed = socket.closedByPeer(1s);
      RawSocket keepAlive(rig.server.port());
      keepAlive.send("GET /one HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
      kept = keepAlive.readUntil([](const std::string& d) { return countResponses(d) == 1; }, 5s);
      keepAlive.send("GET /two HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
      kept += keepAlive.readUntil([](const std::string& d) { return countResponses(d) == 1; }, 5s);
    }));
    CHECK(plain ==
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: "
          "close\r\n\r\n/plain");
    CHECK(plainClosed);
    // Kept alive, and told so: an HTTP/1.0 client (ab -k) otherwise waits for the close.
    std::string keptAlive =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n"
        "Connection: keep-alive\r\n\r\n";
    CHECK(kept == keptAlive + "/one" + keptAlive + "/two");
  }
  CHECK(loop.close());
}

TEST_CASE("answers to HEAD and 204 carry no body, and the next answer is framed right",
          "[core][server]") {
  TestLoop loop;
  {
    Rig rig(loop);
    rig.terminal.onEnd = [](ScriptedStream& stream) {
      if (stream.record.target == "/none") return stream.downstream.replyWith(204, "", "");
      // A 204 given a body and a length by mistake: neither may reach the client (RFC 9110
      // §8.6), or the client would read the next answer as this one's body.
      if (stream.record.target == "/sloppy")
        return stream.downstream.replyWith(204, "", "ignored", {{"Content-Length", "7"}});
      stream.reply();
    };
    std::string response =
        rig.server.roundTrip(request("HEAD", "/head") + request("GET", "/none") +
                                 request("GET", "/sloppy") + request("GET", "/after"),
                             [](const std::string& d) { return endsWith(d, "/after"); });
    // HEAD: the length the body would have, and no body.
    CHECK(response ==
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n"
          "HTTP/1.1 204 No Content\r\n\r\n"
          "HTTP/1.1 204 No Content\r\n\r\n" +
              okFor("/after"));
  }
  CHECK(loop.close());
}

TEST_CASE("a body over the limit by its Content-Length is refused before any 100 Continue",
          "[core][server]") {
  TestLoop loop;
  {
    ServerLimits limits;
    limits.maxRequestBodyBytes = 1000;
    Rig rig(loop, limits);
    std::string refused;
    bool closed = false;
    std::string interim;
    std::string accepted;
    REQUIRE(loop.runAlongside([&] {
      RawSocket socket(rig.server.port());
      socket.send(request("POST", "/big", "Content-Length: 5000\r\nExpect: 100-continue\r\n"));
      refused = socket.readAll(5s);
      closed = socket.closedByPeer(1s);
      // Within the limit, the client is told to go on and its body reaches the terminal.
      RawSocket small(rig.server.port());
      small.send(request("POST", "/small", "Content-Length: 10\r\nExpect: 100-continue\r\n"));
      interim = small.readUntil([](const std::string& d) { return endsWith(d, "\r\n\r\n"); }, 5s);
      small.send("0123456789");
      accepted = small.readUntil([](const std::string& d) { return countResponses(d) == 1; }, 5s);
    }));
    std::string message = "request body larger than 1000 bytes\n";
    CHECK(refused ==
          "HTTP/1.1 413 Content Too Large\r\nX-Content-Type-Options: nosniff\r\n"
          "Content-Type: text/plain; charset=utf-8\r\nContent-Length: " +
              std::to_string(message.size()) + "\r\nConnection: close\r\n\r\n" + message);
    CHECK(closed);
    CHECK(interim == "HTTP/1.1 100 Continue\r\n\r\n");
    CHECK(accepted == okFor("/small"));
    // The refused request never reached the terminal.
    REQUIRE(rig.terminal.records.size() == 1);
    CHECK(rig.record(0).target == "/small");
    CHECK(rig.record(0).body == "0123456789");
    CHECK(rig.events.front() == "done /big 413");
  }
  CHECK(loop.close());
}

TEST_CASE("a streamed body that outgrows the limit is answered 413 and its stream cancelled",
          "[core][server]") {
  TestLoop loop;
  {
    ServerLimits limits;
    limits.maxRequestBodyBytes = 1000;
    Rig rig(loop, limits);
    // The terminal waits for the whole body, which never fits.
    rig.terminal.onEnd = [](ScriptedStream& stream) { stream.reply(); };
    std::string response = rig.server.roundTrip(
        request("POST", "/upload", "Transfer-Encoding: chunked\r\n") + "258\r\n" +
            std::string(600, 'a') + "\r\n258\r\n" + std::string(600, 'b') + "\r\n",
        CoreServer::whenClosed);
    CHECK(response.starts_with("HTTP/1.1 413 "));
    CHECK(endsWith(response, "\r\n\r\nrequest body larger than 1000 bytes\n"));
    REQUIRE(rig.terminal.records.size() == 1);
    const StreamRecord& record = rig.record(0);
    // The stream got what fitted, and no byte beyond the limit.
    CHECK(record.body.size() >= 600);
    CHECK(record.body.size() <= 1000);
    CHECK(record.body ==
          (std::string(600, 'a') + std::string(1000, 'b')).substr(0, record.body.size()));
    CHECK(record.cancelled);
    CHECK_FALSE(record.ended);
    CHECK(rig.events.back() == "done /upload 413");
  }
  CHECK(loop.close());
}

TEST_CASE("a request head not complete in time is answered 408", "[core][server]") {
  TestLoop loop;
  {
    ServerLimits limits;
    limits.headerTimeout = 150ms;
    Rig rig(loop, limits);
    std::string response;
    Clock::duration waited{};
    REQUIRE(loop.runAlongside([&] {
      RawSocket socket(rig.server.port());
      auto start = Clock::now();
      socket.send("GET /late HTTP/1.1\r\nHost: test\r\n");
      response = socket.readAll(5s);
      waited = Clock::now() - start;
    }));
    std::string message = "request head not received in time\n";
    CHECK(response ==
          "HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n"
          "X-Content-Type-Options: nosniff\r\nConnection: close\r\nContent-Length: " +
              std::to_string(message.size()) + "\r\n\r\n" + message);
    CHECK(waited >= 140ms);
    CHECK(rig.terminal.records.empty());
  }
  CHECK(loop.close());
}

TEST_CASE("a request body that stalls is answered 408 and its stream cancelled", "[core][server]") {
  TestLoop loop;
  {
    ServerLimits limits;
    limits.headerTimeout = 150ms;
    Rig rig(loop, limits);
    std::string response = rig.server.roundTrip(
        request("POST", "/stalled", "Content-Length: 10\r\n", "12345"), CoreServer::whenClosed);
    CHECK(response.starts_with("HTTP/1.1 408 Request Timeout\r\n"));
    CHECK(endsWith(response, "\r\n\r\nrequest body not received in time\n"));
    REQUIRE(rig.terminal.records.size() == 1);
    CHECK(rig.record(0).body == "12345");
    CHECK(rig.record(0).cancelled);
    CHECK(rig.events.back() == "done /stalled 408");
  }
  CHECK(loop.close());
}

TEST_CASE("an idle keep-alive connection is closed without an answer", "[core][server]") {
  TestLoop loop;
  {
    ServerLimits limits;
    limits.idleTimeout = 100ms;
    Rig rig(loop, limits);
    std::string first;
    std::string after;
    REQUIRE(loop.runAlongside([&] {
      RawSocket socket(rig.server.port());
      socket.send(request("GET", "/once"));
      first = socket.readUntil([](const std::string& d) { return countResponses(d) == 1; }, 5s);
      after = socket.readAll(5s);
    }));
    CHECK(first == okFor("/once"));
    CHECK(after.empty());
    CHECK(loop.runUntil([&] { return rig.server.context.clients.empty(); }, 5s));
  }
  CHECK(loop.close());
}

TEST_CASE("filters see the request and observe the response the terminal streams",
          "[core][server]") {
  TestLoop loop;
  {
    Rig rig(loop);
    rig.addFilter("observer");
    rig.addFilter("reader").buffer = true;
    rig.terminal.onEnd = [](ScriptedStream& stream) {
      stream.startStreaming();
      stream.send("got " + stream.record.body);
      stream.downstream.endResponse({});
    };
    std::string response;
    REQUIRE(loop.runAlongside([&] {
      RawSocket socket(rig.server.port());
      socket.send(request("POST", "/read", "Content-Length: 6\r\n", "abc"));
      std::this_thread::sleep_for(20ms);
      socket.send("def");
      response = socket.readUntil([](const std::string& d) { return countResponses(d) == 1; }, 5s);
    }));
    CHECK(response ==
          "HTTP/1.1 200 OK\r\nX-Stream: yes\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n"
          "\r\na\r\ngot abcdef\r\n0\r\n\r\n");
    REQUIRE(rig.terminal.records.size() == 1);
    // The body the filter read whole is what the terminal got, at once.
    CHECK(rig.record(0).buffered);
    CHECK(rig.record(0).body == "abcdef");
    CHECK(rig.events == Log{"observer:headers /read", "reader:headers /read", "observer:data abc",
                            "reader:data abc", "observer:data def", "reader:data def",
                            "reader:body abcdef", "start /read", "end /read",
                            "observer:response 200", "reader:response 200",
                            "observer:response-data got abcdef", "reader:response-data got abcdef",
                            "observer:complete", "reader:complete", "done /read 200"});
  }
  CHECK(loop.close());
}

TEST_CASE("a filter that answers stops the chain, the filters before it observe the answer",
          "[core][server]") {
  TestLoop loop;
  {
    Rig rig(loop);
    rig.addFilter("observer");
    rig.addFilter("guard").answer = 403;
    rig.addFilter("never");
    std::string response = rig.server.roundTrip(request("GET", "/secret"));
    CHECK(response ==
          "HTTP/1.1 403 Forbidden\r\nX-Content-Type-Options: nosniff\r\nContent-Type: text/plain; "
          "charset=utf-8\r\nContent-Length: 14\r\n\r\nguard says no\n");
    CHECK(rig.terminal.records.empty());
    CHECK(rig.events == Log{"observer:headers /secret", "guard:headers /secret",
                            "observer:response 403", "observer:response-data guard says no\n",
                            "observer:complete", "guard:complete", "done /secret 403"});
  }
  CHECK(loop.close());
}

TEST_CASE("a client that leaves mid-response cancels the stream", "[core][server]") {
  TestLoop loop;
  {
    Rig rig(loop);
    rig.addFilter("observer");
    rig.terminal.onEnd = [](ScriptedStream& stream) {
      stream.startStreaming();
      stream.send("part");
      // The rest would come much later; the client does not wait for it.
      stream.after(10s, [](ScriptedStream& s) { s.downstream.endResponse({}); });
    };
    std::string received;
    REQUIRE(loop.runAlongside([&] {
      RawSocket socket(rig.server.port());
      socket.send(request("GET", "/leave"));
      received = socket.readUntil([](const std::string& d) { return endsWith(d, "part\r\n"); }, 5s);
      socket.close();
    }));
    CHECK(endsWith(received, "4\r\npart\r\n"));
    REQUIRE(loop.runUntil([&] { return rig.terminal.records.at(0)->cancelled; }, 5s));
    CHECK(rig.events.back() == "done /leave 499");
    CHECK(std::find(rig.events.begin(), rig.events.end(), "observer:incomplete") !=
          rig.events.end());
    CHECK(rig.server.context.clients.empty());
    CHECK(rig.server.context.stats.exchangesInFlight == 0);
  }
  CHECK(loop.close());
}

TEST_CASE("a terminal that aborts its response closes the connection", "[core][server]") {
  TestLoop loop;
  {
    Rig rig(loop);
    rig.terminal.onEnd = [](ScriptedStream& stream) {
      ResponseHead head;
      head.headers = {{"Content-Length", "100"}};
      stream.downstream.sendResponseHead(head, "", false);
      stream.send("partial");
      stream.after(10ms, [](ScriptedStream& s) { s.downstream.abortResponse(); });
    };
    std::string received = rig.server.roundTrip(request("GET", "/abort"), CoreServer::whenClosed);
    // The client sees a response cut short, not a complete one.
    CHECK(received == "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
    CHECK(countResponses(received) == 0);
    REQUIRE(loop.runUntil([&] { return rig.server.context.clients.empty(); }, 5s));
    CHECK(rig.events.back() == "done /abort 499");
  }
  CHECK(loop.close());
}

TEST_CASE("a client that does not read holds the terminal back until its queue drains",
          "[core][server]") {
  TestLoop loop;
  {
    Rig rig(loop);
    const std::string piece(64 * 1024, 'x');
    // Sends until the server says the client's queue is full, then waits for the drain.
    rig.terminal.onEnd = [&](ScriptedStream& stream) {
      stream.startStreaming();
      size_t sent = 0;
      while (sent < (size_t{64} << 20)) {
        sent += piece.size();
        if (!stream.send(piece)) break;
      }
      stream.record.sentBeforePause = sent;
    };
    rig.terminal.onDrained = [](ScriptedStream& stream) {
      if (stream.record.drained == 1) stream.downstream.endResponse({});
    };
    size_t received = 0;
    bool complete = false;
    REQUIRE(loop.runAlongside([&] {
      RawSocket socket(rig.server.port());
      socket.send(request("GET", "/flood"));
      // Not reading for a while: the socket buffers fill and the server's queue grows.
      std::this_thread::sleep_for(200ms);
      std::string data =
          socket.readUntil([](const std::string& d) { return endsWith(d, "\r\n0\r\n\r\n"); }, 10s);
      received = data.size();
      complete = countResponses(data) == 1;
    }));
    REQUIRE(rig.terminal.records.size() == 1);
    const StreamRecord& record = rig.record(0);
    // It stopped once more than the high-water mark was queued, long before the cap.
    CHECK(record.sentBeforePause > kBackpressureHighWater);
    CHECK(record.sentBeforePause < (size_t{64} << 20));
    CHECK(record.drained >= 1);
    CHECK(complete);
    CHECK(received > record.sentBeforePause);
  }
  CHECK(loop.close());
}

TEST_CASE("a unix socket listener serves the same context, clients without an address",
          "[core][server]") {
  TestLoop loop;
  {
    Rig rig(loop);
    Listener unixListener(rig.server.context);
    std::string name = "@ksa-core-server-test-" + std::to_string(::getpid());
    REQUIRE(unixListener.listenUnix(name) == 0);
    HttpResponse response;
    REQUIRE(loop.runAlongside([&] {
      response = httpRequest("http://localhost/over-unix", {.timeout = 5s, .unixSocket = name});
    }));
    CHECK(response.status == 200);
    CHECK(response.body == "/over-unix");
    REQUIRE(rig.terminal.records.size() == 1);
    CHECK(rig.record(0).clientAddress.empty());
    unixListener.close();
  }
  CHECK(loop.close());
}
