#include "router/config.h"

#include <catch2/catch.hpp>

#include <vector>

using namespace router;

namespace {

RouterParseResult parse(std::vector<const char*> args) {
  args.insert(args.begin(), "kserve-router");
  return parseRouterConfig(static_cast<int>(args.size()), args.data());
}

}  // namespace

TEST_CASE("router flags: upstream's --graph-json and ours with their defaults",
          "[router][config]") {
  auto result = parse({"--graph-json", "{}"});
  REQUIRE(result.config);
  CHECK(result.config->graphJson == "{}");
  CHECK(result.config->port == 8080);
  CHECK(result.config->drainPeriod == std::chrono::seconds(30));
  auto custom = parse({"--graph-json={\"nodes\":{}}", "--port=9000", "--drain-period", "1m30s",
                       "--max-step-response-bytes", "100", "--log-level", "debug"});
  REQUIRE(custom.config);
  CHECK(custom.config->graphJson == "{\"nodes\":{}}");
  CHECK(custom.config->port == 9000);
  CHECK(custom.config->drainPeriod == std::chrono::seconds(90));
  CHECK(custom.config->maxStepResponseBytes == 100);
  CHECK(custom.config->logLevel == "debug");
}

TEST_CASE("router flags: bad input is one line naming the flag and the value as typed, exit 2",
          "[router][config]") {
  struct Case {
    std::vector<const char*> args;
    std::string says;
  };
  std::vector<Case> cases = {
      {{}, "--graph-json is required"},
      {{"--graph-json", "{}", "--port", "abc"}, R"(invalid value "abc" for --port)"},
      {{"--graph-json", "{}", "--port="}, R"(invalid value "" for --port)"},
      {{"--graph-json", "{}", "--drain-timeout", "0s"},
       R"(invalid value "0s" for --drain-timeout)"},
      {{"--graph-json", "{}", "--nope"}, "unknown flag: --nope"},
      {{"--graph-json"}, "flag needs a value: --graph-json"},
      {{"--graph-json", "{}", "stray"}, R"(unexpected argument "stray")"},
      {{"--graph-json", "{}", "--istio-probe-url", "ftp://x"}, "--istio-probe-url"},
      {{"--graph-json", "{}", "--log-level", "loud"}, R"(invalid value "loud" for --log-level)"},
  };
  for (const auto& c : cases) {
    auto result = parse(c.args);
    INFO(c.says);
    CHECK_FALSE(result.config);
    CHECK(result.exitCode == 2);
    CHECK_THAT(result.message, Catch::Contains(c.says));
  }
  auto help = parse({"--help"});
  CHECK(help.exitCode == 0);
  CHECK_THAT(help.message,
             Catch::Contains("--graph-json string") && Catch::Contains("--drain-period duration"));
}

TEST_CASE("router flags: a boolean flag alone is true, =value takes Go's spellings",
          "[router][config]") {
  CHECK_FALSE(parse({"--graph-json", "{}"}).config->streamResponses);
  CHECK(parse({"--graph-json", "{}", "--stream-responses"}).config->streamResponses);
  CHECK(parse({"--stream-responses", "--graph-json", "{}"}).config->streamResponses);
  CHECK(parse({"--graph-json", "{}", "--stream-responses=T"}).config->streamResponses);
  CHECK_FALSE(parse({"--graph-json", "{}", "--stream-responses=false"}).config->streamResponses);
  auto bad = parse({"--graph-json", "{}", "--stream-responses=yes"});
  CHECK(bad.exitCode == 2);
  CHECK_THAT(bad.message, Catch::Contains(R"(invalid value "yes" for --stream-responses)"));
}
