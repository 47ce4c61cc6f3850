// core::Timer on a real loop: one shot, re-arming, stopping, and destroying it from its own
// callback. Every case ends with the loop closed and nothing left open.
#include "core/uv/timer.h"

#include <uv.h>

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/loop.h"

using namespace std::chrono_literals;
using core::Timer;
using testsupport::TestLoop;

TEST_CASE("a timer fires once, on the loop, after its delay", "[core][timer]") {
  TestLoop loop;
  {
    Timer timer(loop.get());
    int fired = 0;
    // Timers count from the loop's clock, which is read when the loop turns: bring it to now.
    uv_update_time(loop.get());
    auto start = std::chrono::steady_clock::now();
    std::chrono::steady_clock::duration waited{};
    timer.start(30ms, [&] {
      ++fired;
      waited = std::chrono::steady_clock::now() - start;
    });
    CHECK(fired == 0);
    REQUIRE(loop.runUntil([&] { return fired > 0; }, 5s));
    CHECK(waited >= 25ms);  // libuv's clock has millisecond steps
    loop.runFor(100ms);
    CHECK(fired == 1);
  }
  CHECK(loop.close());
}

TEST_CASE("a zero delay fires on the next loop turn, never inside start", "[core][timer]") {
  TestLoop loop;
  {
    Timer timer(loop.get());
    bool fired = false;
    timer.start(0ms, [&] { fired = true; });
    CHECK_FALSE(fired);
    CHECK(loop.runUntil([&] { return fired; }, 5s));
    // A negative delay is taken as zero.
    fired = false;
    timer.start(-5ms, [&] { fired = true; });
    CHECK_FALSE(fired);
    CHECK(loop.runUntil([&] { return fired; }, 5s));
  }
  CHECK(loop.close());
}

TEST_CASE("re-arming replaces the callback and the delay", "[core][timer]") {
  TestLoop loop;
  {
    Timer timer(loop.get());
    std::vector<std::string> fired;
    timer.start(20ms, [&] { fired.push_back("first"); });
    timer.start(60ms, [&] { fired.push_back("second"); });
    REQUIRE(loop.runUntil([&] { return !fired.empty(); }, 5s));
    loop.runFor(100ms);
    CHECK(fired == std::vector<std::string>{"second"});
    // And a shorter delay replaces a longer one.
    fired.clear();
    timer.start(5s, [&] { fired.push_back("late"); });
    timer.start(10ms, [&] { fired.push_back("soon"); });
    REQUIRE(loop.runUntil([&] { return !fired.empty(); }, 1s));
    CHECK(fired == std::vector<std::string>{"soon"});
  }
  CHECK(loop.close());
}

TEST_CASE("stop prevents the callback, and the timer can be armed again", "[core][timer]") {
  TestLoop loop;
  {
    Timer timer(loop.get());
    int fired = 0;
    timer.start(10ms, [&] { ++fired; });
    timer.stop();
    loop.runFor(60ms);
    CHECK(fired == 0);
    // A stopped timer keeps nothing alive: the loop has nothing to wait for.
    CHECK(uv_run(loop.get(), UV_RUN_NOWAIT) == 0);
    timer.stop();  // stopping twice is harmless
    timer.start(10ms, [&] { ++fired; });
    CHECK(loop.runUntil([&] { return fired == 1; }, 5s));
  }
  CHECK(loop.close());
}

TEST_CASE("a timer may re-arm itself from its callback", "[core][timer]") {
  TestLoop loop;
  {
    Timer timer(loop.get());
    int fired = 0;
    std::function<void()> tick = [&] {
      if (++fired < 3) timer.start(5ms, tick);
    };
    timer.start(5ms, tick);
    REQUIRE(loop.runUntil([&] { return fired == 3; }, 5s));
    loop.runFor(50ms);
    CHECK(fired == 3);
  }
  CHECK(loop.close());
}

TEST_CASE("destroying the timer inside its own callback is safe", "[core][timer]") {
  TestLoop loop;
  auto timer = std::make_unique<Timer>(loop.get());
  // The callback owns state of its own that must stay valid while it runs.
  auto payload = std::make_shared<std::string>("still here");
  std::string seen;
  timer->start(5ms, [&, payload] {
    timer.reset();
    seen = *payload;
  });
  payload.reset();
  REQUIRE(loop.runUntil([&] { return timer == nullptr; }, 5s));
  CHECK(seen == "still here");
  CHECK(loop.close());
}

TEST_CASE("destroying an armed timer cancels it and frees it on the loop", "[core][timer]") {
  TestLoop loop;
  bool fired = false;
  {
    Timer timer(loop.get());
    timer.start(10ms, [&] { fired = true; });
  }
  loop.runFor(50ms);
  CHECK_FALSE(fired);
  CHECK(loop.close());
}
