#include "core/client/resolver.h"

#include <catch2/catch.hpp>

#include "tests/support/loop.h"

using namespace core;

TEST_CASE("IP literals resolve at once, without a lookup", "[core][resolver]") {
  testsupport::TestLoop loop;
  Resolver resolver(loop.get());
  std::vector<std::string> seen;
  uint64_t id = resolver.resolve("127.0.0.1", 8080, [&](int status, const Addresses& addresses) {
    REQUIRE(status == 0);
    for (const auto& address : addresses)
      seen.push_back(addressText(address));
  });
  CHECK(id == 0);
  CHECK(seen == std::vector<std::string>{"127.0.0.1:8080"});
  resolver.resolve("::1", 9, [&](int, const Addresses& addresses) {
    seen.push_back(addressText(addresses.at(0)));
  });
  CHECK(seen.back() == "[::1]:9");
}

TEST_CASE("a name is looked up off the loop and its answer kept for a while", "[core][resolver]") {
  testsupport::TestLoop loop;
  Resolver resolver(loop.get());
  int answers = 0;
  std::vector<std::string> first;
  auto record = [&](int status, const Addresses& addresses) {
    REQUIRE(status == 0);
    ++answers;
    if (first.empty()) {
      for (const auto& address : addresses)
        first.push_back(addressText(address));
    }
  };
  // Two concurrent lookups of one name share one query; the port is each caller's own.
  CHECK(resolver.resolve("localhost", 81, record) != 0);
  CHECK(resolver.resolve("localhost", 82, record) != 0);
  REQUIRE(loop.runUntil([&] { return answers == 2; }));
  REQUIRE_FALSE(first.empty());
  CHECK_THAT(first.front(), Catch::EndsWith(":81"));
  // Kept: the next resolve answers before it returns.
  CHECK(resolver.resolve("localhost", 83, record) == 0);
  CHECK(answers == 3);
}

TEST_CASE("a withdrawn resolve never calls back", "[core][resolver]") {
  testsupport::TestLoop loop;
  bool called = false;
  {
    Resolver resolver(loop.get());
    uint64_t id = resolver.resolve("localhost", 80, [&](int, const Addresses&) { called = true; });
    resolver.cancel(id);
    int later = 0;
    resolver.resolve("localhost", 80, [&](int, const Addresses&) { ++later; });
    REQUIRE(loop.runUntil([&] { return later == 1; }));
    CHECK_FALSE(called);
    // A resolver that goes with a lookup in flight drops its callbacks too.
    resolver.forget("localhost");
    resolver.resolve("localhost", 80, [&](int, const Addresses&) { called = true; });
  }
  loop.runFor(std::chrono::milliseconds(200));
  CHECK_FALSE(called);
}
