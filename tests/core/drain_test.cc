// The drain sequence on a real loop with scripted filters and a recording owner: the quiet
// period (restarted by requests), stop accepting, filters drained last to first (an observing
// one only once no exchange is in flight), the end, and the deadline. In-flight exchanges are
// the server's count (ServerStats::exchangesInFlight), set here by hand as the server would.
#include "core/server/drain.h"

#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/loop.h"

using namespace core;
using namespace std::chrono_literals;
using testsupport::TestLoop;
using Clock = std::chrono::steady_clock;
using Log = std::vector<std::string>;

namespace {

// A filter whose drain is held until the test lets it finish (or finishes at once).
class DrainingFilter final : public Filter {
 public:
  DrainingFilter(std::string name, Log& log, unsigned observe)
      : name_(std::move(name)), log_(log), observe_(observe) {}
  unsigned observes() const override { return observe_; }
  void drain(Clock::time_point until, std::function<void()> done) override {
    log_.push_back(name_ + ":drain");
    deadline = until;
    if (immediate) {
      done();
    } else {
      pending = std::move(done);
    }
  }
  // Lets a held drain finish.
  void finish() {
    REQUIRE(pending);
    log_.push_back(name_ + ":done");
    std::exchange(pending, nullptr)();
  }

  bool immediate = false;
  std::function<void()> pending;
  Clock::time_point deadline;

 private:
  std::string name_;
  Log& log_;
  unsigned observe_;
};

// A terminal no exchange reaches: the drain needs only the context.
class UnusedTerminal final : public Terminal {
 public:
  TerminalStreamPtr start(Downstream&) override { return nullptr; }
};

struct Owner final : DrainCallbacks {
  explicit Owner(Log& l) : log(l) {}
  void stopAccepting() override { log.push_back("stop-accepting"); }
  void drained(bool timedOut) override {
    log.push_back(timedOut ? "drained:timed-out" : "drained");
    ++endings;
  }
  Log& log;
  int endings = 0;
};

// One server's context, its filters and its drain, on the test's loop.
struct Fixture {
  Fixture(TestLoop& testLoop, std::chrono::milliseconds quiet,
          std::chrono::milliseconds timeout = 10s)
      : loop(testLoop),
        context(limits, loop.get(), terminal, 10),
        owner(log),
        drain(context, quiet, timeout, owner) {}
  DrainingFilter& add(const std::string& name, unsigned observe = kObserveNone) {
    filters.push_back(std::make_unique<DrainingFilter>(name, log, observe));
    std::vector<Filter*> list;
    for (auto& filter : filters)
      list.push_back(filter.get());
    context.chain.setFilters(list);
    return *filters.back();
  }
  bool ended() const { return owner.endings > 0; }

  TestLoop& loop;
  Log log;
  ServerLimits limits;
  UnusedTerminal terminal;
  ServerContext context;
  std::vector<std::unique_ptr<DrainingFilter>> filters;
  Owner owner;
  DrainSequence drain;
};

}  // namespace

TEST_CASE("after the quiet period: stop accepting, drain filters last to first, end",
          "[core][drain]") {
  TestLoop loop;
  {
    Fixture f(loop, 20ms);
    auto& a = f.add("a");
    auto& b = f.add("b");
    auto& c = f.add("c");
    CHECK(f.drain.stage() == DrainSequence::Stage::Serving);
    f.drain.begin();
    CHECK(f.drain.stage() == DrainSequence::Stage::Quiet);
    CHECK(f.log.empty());
    CHECK_FALSE(f.context.draining);
    REQUIRE(loop.runUntil([&] { return !f.log.empty(); }, 5s));
    CHECK(f.drain.stage() == DrainSequence::Stage::Finishing);
    // Keep-alive ends with the drain: answers from now on say Connection: close.
    CHECK(f.context.draining);
    // One filter at a time: the next drains only once the one after it has finished.
    CHECK(f.log == Log{"stop-accepting", "c:drain"});
    c.finish();
    CHECK(f.log == Log{"stop-accepting", "c:drain", "c:done", "b:drain"});
    b.finish();
    CHECK_FALSE(f.ended());
    a.finish();
    CHECK(f.log == Log{"stop-accepting", "c:drain", "c:done", "b:drain", "b:done", "a:drain",
                       "a:done", "drained"});
    CHECK(f.drain.stage() == DrainSequence::Stage::Done);
    // Every filter was given the same deadline: the drain timeout from the end of the quiet period.
    CHECK(a.deadline == c.deadline);
    CHECK(c.deadline > Clock::now() + 9s);
    loop.runFor(20ms);
    CHECK(f.owner.endings == 1);
  }
  CHECK(loop.close());
}

TEST_CASE("a request during the quiet period starts it again", "[core][drain]") {
  TestLoop loop;
  {
    Fixture f(loop, 400ms);
    f.add("a").immediate = true;
    auto begun = Clock::now();
    f.drain.begin();
    loop.runFor(200ms);
    // The quiet timer counts from the loop's clock, which is read when the loop turns.
    uv_update_time(loop.get());
    auto noted = Clock::now();
    f.drain.noteRequest();
    // Past the end of the first quiet period, still quiet.
    loop.runFor(300ms);
    CHECK(Clock::now() - begun >= 400ms);
    CHECK(f.drain.stage() == DrainSequence::Stage::Quiet);
    CHECK(f.log.empty());
    REQUIRE(loop.runUntil([&] { return f.ended(); }, 5s));
    CHECK(Clock::now() - noted >= 395ms);
    CHECK(f.log == Log{"stop-accepting", "a:drain", "drained"});
  }
  CHECK(loop.close());
}

TEST_CASE("requests outside the quiet period do not delay anything", "[core][drain]") {
  TestLoop loop;
  {
    Fixture f(loop, 10ms);
    auto& a = f.add("a");
    // Before the signal: nothing starts.
    f.drain.noteRequest();
    f.drain.progress();
    loop.runFor(30ms);
    CHECK(f.log.empty());
    CHECK(f.drain.stage() == DrainSequence::Stage::Serving);
    f.drain.begin();
    REQUIRE(loop.runUntil([&] { return f.log.size() == 2; }, 5s));
    // While finishing, a request changes nothing: the sequence is past the quiet period.
    f.drain.noteRequest();
    loop.runFor(30ms);
    CHECK(f.log == Log{"stop-accepting", "a:drain"});
    // A second begin() changes nothing either.
    f.drain.begin();
    a.finish();
    CHECK(f.log.back() == "drained");
  }
  CHECK(loop.close());
}

TEST_CASE("an observing filter drains only once no exchange is in flight", "[core][drain]") {
  TestLoop loop;
  {
    Fixture f(loop, 0ms);
    f.add("first").immediate = true;
    f.add("observer", kObserveComplete).immediate = true;
    f.add("last").immediate = true;
    f.context.stats.exchangesInFlight = 2;
    f.drain.begin();
    REQUIRE(loop.runUntil([&] { return f.log.size() == 2; }, 5s));
    // The filter after the observer drains (it may hold exchanges the others wait for); the
    // observer waits, so that it sees every exchange still to finish.
    CHECK(f.log == Log{"stop-accepting", "last:drain"});
    f.context.stats.exchangesInFlight = 1;
    f.drain.progress();
    CHECK(f.log.size() == 2);
    f.context.stats.exchangesInFlight = 0;
    f.drain.progress();
    CHECK(f.log == Log{"stop-accepting", "last:drain", "observer:drain", "first:drain", "drained"});
    CHECK(f.owner.endings == 1);
  }
  CHECK(loop.close());
}

TEST_CASE("exchanges still in flight after the filters drained hold the end", "[core][drain]") {
  TestLoop loop;
  {
    Fixture f(loop, 0ms);
    f.add("a").immediate = true;
    f.context.stats.exchangesInFlight = 1;
    f.drain.begin();
    REQUIRE(loop.runUntil([&] { return f.log.size() == 2; }, 5s));
    CHECK(f.log == Log{"stop-accepting", "a:drain"});
    loop.runFor(20ms);
    CHECK_FALSE(f.ended());
    f.context.stats.exchangesInFlight = 0;
    f.drain.progress();
    CHECK(f.log.back() == "drained");
  }
  CHECK(loop.close());
}

TEST_CASE("with no filters the drain ends as soon as it may", "[core][drain]") {
  TestLoop loop;
  {
    Fixture f(loop, 0ms);
    f.drain.begin();
    CHECK(f.log.empty());  // the quiet period runs from the loop, even when it is 0
    REQUIRE(loop.runUntil([&] { return f.ended(); }, 5s));
    CHECK(f.log == Log{"stop-accepting", "drained"});
  }
  CHECK(loop.close());
}

TEST_CASE("the deadline ends the drain with drained(true)", "[core][drain]") {
  TestLoop loop;
  {
    Fixture f(loop, 0ms, 100ms);
    auto& a = f.add("a");
    auto& b = f.add("b");
    auto start = Clock::now();
    f.drain.begin();
    // "b" never finishes its drain.
    REQUIRE(loop.runUntil([&] { return f.ended(); }, 5s));
    CHECK(Clock::now() - start >= 95ms);
    CHECK(f.log == Log{"stop-accepting", "b:drain", "drained:timed-out"});
    CHECK(f.drain.stage() == DrainSequence::Stage::Done);
    // A drain that finishes late changes nothing: the sequence has ended, once.
    b.finish();
    f.drain.progress();
    loop.runFor(20ms);
    CHECK(f.owner.endings == 1);
    CHECK_FALSE(a.pending);
    CHECK(f.log == Log{"stop-accepting", "b:drain", "drained:timed-out", "b:done"});
  }
  CHECK(loop.close());
}
