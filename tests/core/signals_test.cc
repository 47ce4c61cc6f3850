// SIGTERM and SIGINT as both binaries take them. Signal handlers are process-wide and a second
// signal ends the process, so each case runs in a forked child, which reports through its exit
// status and output.
#include "core/uv/signals.h"

#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>

#include "tests/support/loop.h"
#include "tests/support/process.h"

using namespace std::chrono_literals;
using testsupport::ChildOutcome;
using testsupport::runInChild;
using testsupport::TestLoop;

namespace {

// Exit statuses of the child when something went wrong before the second signal.
constexpr int kFirstNotSeen = 10;
constexpr int kSecondDidNotExit = 11;

// In the child: takes `first`, then `second`; prints "first=<signum> calls=<n>" once the first
// was handled. The second signal should end the child with status 1.
int firstThenSecond(int first, int second) {
  TestLoop loop;
  int calls = 0;
  int seen = 0;
  core::ShutdownSignals signals(loop.get(), [&](int signum) {
    ++calls;
    seen = signum;
  });
  ::kill(::getpid(), first);
  if (!loop.runUntil([&] { return calls > 0; }, 5s)) return kFirstNotSeen;
  // Nothing more arrives for the first signal.
  loop.runFor(50ms);
  std::printf("first=%d calls=%d\n", seen, calls);
  std::fflush(stdout);
  ::kill(::getpid(), second);
  loop.runFor(5s);
  return kSecondDidNotExit;
}

}  // namespace

TEST_CASE("the first SIGTERM calls back once, a second one exits with status 1",
          "[core][signals]") {
  ChildOutcome child = runInChild([] { return firstThenSecond(SIGTERM, SIGTERM); });
  CHECK(child.out.starts_with("first=" + std::to_string(SIGTERM) + " calls=1\n"));
  // The exit is logged (spdlog's default logger writes to stdout).
  CHECK_THAT(child.out,
             Catch::Contains("second signal " + std::to_string(SIGTERM) + ": exiting now"));
  REQUIRE(child.exited);
  CHECK(child.exitCode == 1);
}

TEST_CASE("SIGINT starts the drain as SIGTERM does, and either one after it exits",
          "[core][signals]") {
  ChildOutcome child = runInChild([] { return firstThenSecond(SIGINT, SIGTERM); });
  CHECK(child.out.starts_with("first=" + std::to_string(SIGINT) + " calls=1\n"));
  REQUIRE(child.exited);
  CHECK(child.exitCode == 1);
}

TEST_CASE("the watchers alone do not keep the loop running, and close with their owner",
          "[core][signals]") {
  ChildOutcome child = runInChild([] {
    TestLoop loop;
    {
      core::ShutdownSignals signals(loop.get(), [](int) {});
      // Nothing else is on the loop: uv_run returns at once instead of waiting for a signal.
      if (uv_run(loop.get(), UV_RUN_DEFAULT) != 0) return 20;
    }
    return loop.close() ? 0 : 21;
  });
  REQUIRE(child.exited);
  CHECK(child.exitCode == 0);
}
