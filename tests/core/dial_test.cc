// dialOnce (the tcpSocket probe's connect) on a real loop against loopback listeners.
#include "core/client/dial.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <optional>

#include "tests/support/loop.h"
#include "tests/support/net.h"

using namespace std::chrono_literals;
using namespace testsupport;
using Clock = std::chrono::steady_clock;

namespace {

sockaddr_storage loopbackAddress(uint16_t port) {
  sockaddr_storage storage{};
  auto* address = reinterpret_cast<sockaddr_in*>(&storage);
  address->sin_family = AF_INET;
  address->sin_port = htons(port);
  address->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return storage;
}

struct Outcome {
  bool connected = false;
  Clock::duration elapsed{};
};

// Dials and runs the loop until the outcome is known, which must come once, from the loop.
Outcome dial(TestLoop& loop, const sockaddr_storage& address, std::chrono::milliseconds timeout) {
  std::optional<Outcome> outcome;
  bool calledInside = false;
  bool inside = true;
  // The dial's timer counts from the loop's clock, which is read when the loop turns.
  uv_update_time(loop.get());
  auto start = Clock::now();
  int calls = 0;
  core::dialOnce(loop.get(), address, timeout, [&](bool connected) {
    ++calls;
    calledInside = inside;
    outcome = Outcome{connected, Clock::now() - start};
  });
  inside = false;
  REQUIRE(loop.runUntil([&] { return outcome.has_value(); }, 10s));
  CHECK_FALSE(calledInside);
  loop.runFor(20ms);
  CHECK(calls == 1);
  return *outcome;
}

}  // namespace

TEST_CASE("a dial to a listener connects, and closes its socket again", "[core][dial]") {
  uint16_t port = 0;
  int listener = listenOnLoopback(8, port);
  REQUIRE(listener >= 0);
  TestLoop loop;
  Outcome outcome = dial(loop, loopbackAddress(port), 2s);
  CHECK(outcome.connected);
  // The connection reached the listener, and the dial has closed its end: the accepted socket
  // reads end of file.
  int accepted = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  REQUIRE(accepted >= 0);
  pollfd readable{accepted, POLLIN, 0};
  CHECK(::poll(&readable, 1, 2000) == 1);
  char byte;
  CHECK(::read(accepted, &byte, 1) == 0);
  ::close(accepted);
  ::close(listener);
  CHECK(loop.close());
}

TEST_CASE("a dial to a closed port fails at once, not at the timeout", "[core][dial]") {
  TestLoop loop;
  Outcome outcome = dial(loop, loopbackAddress(freePort()), 5s);
  CHECK_FALSE(outcome.connected);
  CHECK(outcome.elapsed < 2s);
  CHECK(loop.close());
}

TEST_CASE("a dial nobody answers fails at its timeout", "[core][dial]") {
  UnansweringListener unanswering;
  REQUIRE(unanswering.ok());
  TestLoop loop;
  Outcome outcome = dial(loop, loopbackAddress(unanswering.port()), 300ms);
  CHECK_FALSE(outcome.connected);
  CHECK(outcome.elapsed >= 290ms);
  CHECK(outcome.elapsed < 2s);
  // The pending connect was cancelled with the socket: nothing is left on the loop.
  CHECK(loop.close());
}

TEST_CASE("a dial that cannot even start fails on the next loop turn", "[core][dial]") {
  TestLoop loop;
  // No address family: libuv refuses the connect synchronously.
  sockaddr_storage nothing{};
  Outcome outcome = dial(loop, nothing, 5s);
  CHECK_FALSE(outcome.connected);
  CHECK(outcome.elapsed < 1s);
  CHECK(loop.close());
}

TEST_CASE("many dials at once each call back once and leave nothing open", "[core][dial]") {
  uint16_t port = 0;
  int listener = listenOnLoopback(64, port);
  REQUIRE(listener >= 0);
  uint16_t closedPort = freePort();
  TestLoop loop;
  int connected = 0;
  int failed = 0;
  for (int i = 0; i < 20; ++i) {
    core::dialOnce(loop.get(), loopbackAddress(i % 2 == 0 ? port : closedPort), 2s,
                   [&](bool ok) { ++(ok ? connected : failed); });
  }
  REQUIRE(loop.runUntil([&] { return connected + failed == 20; }, 10s));
  loop.runFor(50ms);
  CHECK(connected == 10);
  CHECK(failed == 10);
  CHECK(loop.close());
  ::close(listener);
}
