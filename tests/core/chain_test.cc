// The chain without sockets: scripted filters, an in-memory exchange and a recording owner.
#include "core/chain/chain.h"

#include <catch2/catch.hpp>

#include <memory>
#include <stdexcept>

#include "tests/support/fake_exchange.h"

using namespace core;
using testsupport::FakeExchange;

namespace {

// A filter that answers its hooks as scripted and logs every call it gets.
class ScriptedFilter final : public Filter {
 public:
  ScriptedFilter(std::string name, std::vector<std::string>& log, unsigned observe = 0)
      : name_(std::move(name)), log_(log), observe_(observe) {}

  unsigned observes() const override { return observe_; }
  Action onRequestHeaders(const ExchangePtr& exchange) override {
    log_.push_back(name_ + ":headers");
    if (replyInHeaders) exchange->replyError(403, name_ + " says no");
    return onHeaders;
  }
  Action onRequestBody(const ExchangePtr&, std::string& body) override {
    log_.push_back(name_ + ":body=" + body);
    if (!replaceBody.empty()) body = replaceBody;
    return onBody;
  }
  void onRequestData(Exchange&, std::string_view chunk) override {
    log_.push_back(name_ + ":data=" + std::string(chunk));
  }
  void onResponseHeaders(Exchange&) override { log_.push_back(name_ + ":response"); }
  void onResponseData(Exchange&, std::string_view chunk) override {
    log_.push_back(name_ + ":response-data=" + std::string(chunk));
  }
  void onComplete(Exchange&, bool complete) override {
    log_.push_back(name_ + (complete ? ":complete" : ":incomplete"));
  }

  Action onHeaders = Action::Continue;
  Action onBody = Action::Continue;
  bool replyInHeaders = false;
  std::string replaceBody;

 private:
  std::string name_;
  std::vector<std::string>& log_;
  unsigned observe_;
};

constexpr unsigned kAll = kObserveRequestData | kObserveResponse | kObserveComplete;

// The exchange's side of the chain: records what the chain asks of it.
struct Owner final : ChainCallbacks {
  explicit Owner(std::shared_ptr<FakeExchange> exchange) : exchange_(std::move(exchange)) {}
  void onChainPassed() override { log.push_back("passed"); }
  void onPassBody(const char* data, size_t length) override {
    log.push_back("terminal=" + std::string(data, length));
  }
  void onBufferedBodyTooLarge(size_t limit) override {
    log.push_back("too-large=" + std::to_string(limit));
  }
  ExchangePtr exchangePtr() override { return exchange_; }
  std::vector<std::string> log;

 private:
  std::shared_ptr<FakeExchange> exchange_;
};

struct Fixture {
  ScriptedFilter& add(const std::string& name, unsigned observe = kAll) {
    filters.push_back(std::make_unique<ScriptedFilter>(name, log, observe));
    return *filters.back();
  }
  void build() {
    std::vector<Filter*> list;
    for (auto& filter : filters)
      list.push_back(filter.get());
    chain.setFilters(list);
    run = std::make_unique<ChainRun>(chain, owner, 10);
  }
  void respond(std::string_view chunk) {
    run->responseHead(*exchange);
    run->responseData(*exchange, chunk);
    run->complete(*exchange, true);
  }

  std::vector<std::string> log;
  std::vector<std::unique_ptr<ScriptedFilter>> filters;
  std::shared_ptr<FakeExchange> exchange =
      std::make_shared<FakeExchange>("POST", "/v1/models/m:predict");
  Owner owner{exchange};
  Chain chain;
  std::unique_ptr<ChainRun> run;
};

using Log = std::vector<std::string>;

}  // namespace

TEST_CASE("filters that continue pass the request on and observe its response", "[core][chain]") {
  Fixture f;
  f.add("a");
  f.add("b");
  f.build();
  f.run->start(*f.exchange, true);
  CHECK(f.run->state() == ChainRun::State::Passed);
  f.run->requestData(*f.exchange, "xy", 2);
  f.run->requestEnd(*f.exchange);
  f.respond("ok");
  CHECK(f.log == Log{"a:headers", "b:headers", "a:data=xy", "b:data=xy", "a:response", "b:response",
                     "a:response-data=ok", "b:response-data=ok", "a:complete", "b:complete"});
  CHECK(f.owner.log == Log{"passed", "terminal=xy"});
  CHECK_FALSE(f.run->bodyBuffered());
}

TEST_CASE("a filter that handles the request stops it, only those before it see the response",
          "[core][chain]") {
  Fixture f;
  f.add("a");
  f.add("b").onHeaders = Action::Handled;
  f.add("c");
  f.build();
  f.run->start(*f.exchange, false);
  CHECK(f.run->state() == ChainRun::State::Held);
  f.respond("late");
  CHECK(f.log == Log{"a:headers", "b:headers", "a:response", "a:response-data=late", "a:complete",
                     "b:complete"});
  CHECK(f.owner.log.empty());
}

TEST_CASE("a filter that replies in its hook stops the chain at once", "[core][chain]") {
  Fixture f;
  f.add("a");
  f.add("b").replyInHeaders = true;
  f.add("c");
  f.build();
  f.run->start(*f.exchange, true);
  CHECK(f.exchange->status() == 403);
  CHECK(f.log == Log{"a:headers", "b:headers"});
  f.run->requestData(*f.exchange, "ignored", 7);
  CHECK(f.owner.log.empty());
}

TEST_CASE("a body read whole reaches the filter once, then the rest of the chain",
          "[core][chain]") {
  Fixture f;
  f.add("a");
  auto& b = f.add("b");
  b.onHeaders = Action::Buffer;
  b.replaceBody = "NEW";
  f.add("c");
  f.build();
  f.run->start(*f.exchange, true);
  CHECK(f.run->state() == ChainRun::State::Buffering);
  f.run->requestData(*f.exchange, "12", 2);
  f.run->requestData(*f.exchange, "34", 2);
  CHECK(f.owner.log.empty());
  f.run->requestEnd(*f.exchange);
  CHECK(f.run->state() == ChainRun::State::Passed);
  CHECK(f.run->bodyBuffered());
  CHECK(f.run->body() == "NEW");
  CHECK(f.log == Log{"a:headers", "b:headers", "a:data=12", "b:data=12", "a:data=34", "b:data=34",
                     "b:body=1234", "c:headers"});
  CHECK(f.owner.log == Log{"passed"});
}

TEST_CASE("with no body coming, a buffering filter gets the empty body at once", "[core][chain]") {
  Fixture f;
  f.add("a").onHeaders = Action::Buffer;
  f.build();
  f.run->start(*f.exchange, false);
  CHECK(f.log == Log{"a:headers", "a:body="});
  CHECK(f.owner.log == Log{"passed"});
}

TEST_CASE("a body over the bound is refused, or streamed on after BufferOrContinue",
          "[core][chain]") {
  SECTION("Buffer: the exchange answers 413") {
    Fixture f;
    f.add("a").onHeaders = Action::Buffer;
    f.build();
    f.run->start(*f.exchange, true);
    f.run->requestData(*f.exchange, "123456", 6);
    f.run->requestData(*f.exchange, "789012", 6);
    CHECK(f.owner.log == Log{"too-large=10"});
  }
  SECTION("BufferOrContinue: what was collected goes first, then the rest streams") {
    Fixture f;
    f.add("a").onHeaders = Action::BufferOrContinue;
    f.add("b");
    f.build();
    f.run->start(*f.exchange, true);
    f.run->requestData(*f.exchange, "123456", 6);
    f.run->requestData(*f.exchange, "789012", 6);
    f.run->requestData(*f.exchange, "end", 3);
    CHECK(f.run->state() == ChainRun::State::Passed);
    CHECK_FALSE(f.run->bodyBuffered());
    CHECK(f.owner.log == Log{"passed", "terminal=123456", "terminal=789012", "terminal=end"});
    // The second filter joined mid-body: it sees the chunks after it joined.
    CHECK(f.log == Log{"a:headers", "a:data=123456", "a:data=789012", "b:headers", "a:data=end",
                       "b:data=end"});
  }
}

TEST_CASE("observers are called only for what they ask", "[core][chain]") {
  Fixture f;
  f.add("quiet", kObserveNone);
  f.add("done", kObserveComplete);
  f.build();
  f.run->start(*f.exchange, true);
  f.run->requestData(*f.exchange, "x", 1);
  f.respond("y");
  CHECK(f.log == Log{"quiet:headers", "done:headers", "done:complete"});
}

TEST_CASE("a chain holds at most kMaxFilters filters", "[core][chain]") {
  std::vector<std::string> log;
  std::vector<std::unique_ptr<ScriptedFilter>> owned;
  std::vector<Filter*> list;
  for (size_t i = 0; i <= kMaxFilters; ++i) {
    owned.push_back(std::make_unique<ScriptedFilter>("f", log));
    list.push_back(owned.back().get());
  }
  Chain chain;
  CHECK_THROWS_AS(chain.setFilters(list), std::invalid_argument);
  list.pop_back();
  CHECK_NOTHROW(chain.setFilters(list));
}
