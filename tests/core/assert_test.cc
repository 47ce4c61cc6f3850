// Invariant checks: a broken one stops the process loudly, naming the file, line and condition.
// Each abort happens in a forked child; the test reads how the child ended and its stderr.
#include "core/util/assert.h"

#include <signal.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "tests/support/process.h"

using testsupport::ChildOutcome;
using testsupport::runInChild;

// Writes the line it is on to stdout, then checks `condition` there with `assertion`: the child
// tells the test which line the message must name.
#define ASSERT_REPORTING_LINE(assertion, condition) \
  do {                                              \
    std::printf("%d", __LINE__);                    \
    std::fflush(stdout);                            \
    assertion(condition);                           \
  } while (false)

namespace {

// The message a broken invariant prints, for a child that reported the line.
std::string expectedMessage(const ChildOutcome& child, const std::string& condition) {
  return std::string(__FILE__) + ":" + child.out + ": invariant broken: " + condition + "\n";
}

}  // namespace

TEST_CASE("a broken KSA_RELEASE_ASSERT prints file, line and condition, then aborts",
          "[core][assert]") {
  ChildOutcome child = runInChild([] {
    int requests = 2;
    ASSERT_REPORTING_LINE(KSA_RELEASE_ASSERT, requests + 1 == 4);
    return 0;  // not reached
  });
  CHECK_FALSE(child.exited);
  CHECK(child.signal == SIGABRT);
  REQUIRE_FALSE(child.out.empty());
  CHECK(child.err == expectedMessage(child, "requests + 1 == 4"));
}

// CI's sanitizer build must check KSA_ASSERT: the tests there are built without NDEBUG.
#ifdef NDEBUG
constexpr bool kAssertsChecked = false;
#else
constexpr bool kAssertsChecked = true;
#endif

TEST_CASE("KSA_ASSERT is checked in this build unless NDEBUG turns it off", "[core][assert]") {
  if (KSA_SANITIZER_BUILD) {
    INFO("a sanitizer build must keep KSA_ASSERT on (no -DNDEBUG, as in .ci/test)");
    CHECK(kAssertsChecked);
  }
  if (kAssertsChecked) {
    ChildOutcome child = runInChild([] {
      const char* owner = nullptr;
      ASSERT_REPORTING_LINE(KSA_ASSERT, owner != nullptr);
      return 0;  // not reached
    });
    CHECK(child.signal == SIGABRT);
    CHECK(child.err == expectedMessage(child, "owner != nullptr"));
  } else {
    // Compiled out: the condition is not even evaluated.
    int evaluations = 0;
    KSA_ASSERT(++evaluations == 0);
    CHECK(evaluations == 0);
  }
}

TEST_CASE("a condition that holds does nothing and is evaluated once", "[core][assert]") {
  int evaluations = 0;
  KSA_RELEASE_ASSERT(++evaluations == 1);
  CHECK(evaluations == 1);
  if (kAssertsChecked) {
    KSA_ASSERT(++evaluations == 2);
    CHECK(evaluations == 2);
  }
  // Both expand to one statement, so they nest in an unbraced if/else.
  bool ok = true;
  if (ok)
    KSA_RELEASE_ASSERT(ok);
  else
    KSA_ASSERT(!ok);
  CHECK(ok);
}
