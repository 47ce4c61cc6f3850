// JSON logging as both binaries configure it. The default logger is process-wide, so each case
// configures it in a forked child and reads what the child wrote to stderr.
#include "core/util/logging.h"

#include <spdlog/spdlog.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <iomanip>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/process.h"

using testsupport::ChildOutcome;
using testsupport::runInChild;

namespace {

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

// Seconds since the epoch of an RFC 3339 UTC time with a fraction ("...T12:00:00.123456Z").
std::time_t epochSeconds(const std::string& time) {
  std::tm parts{};
  std::istringstream in(time);
  in >> std::get_time(&parts, "%Y-%m-%dT%H:%M:%S");
  return timegm(&parts);
}

}  // namespace

TEST_CASE("a log line is one JSON object with time, level and message on stderr",
          "[core][logging]") {
  ChildOutcome child = runInChild([] {
    core::configureJsonLogging("test", "info");
    spdlog::info("model {} loaded in {} ms", "sklearn-iris", 42);
    return 0;
  });
  REQUIRE(child.exited);
  CHECK(child.exitCode == 0);
  CHECK(child.out.empty());
  std::vector<std::string> written = lines(child.err);
  REQUIRE(written.size() == 1);
  nlohmann::json line = nlohmann::json::parse(written[0]);
  CHECK(line.size() == 3);
  CHECK(line["level"] == "info");
  CHECK(line["msg"] == "model sklearn-iris loaded in 42 ms");
  std::string time = line["time"];
  CHECK(std::regex_match(time, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")));
  // UTC, and now.
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  CHECK(std::abs(now - epochSeconds(time)) < 60);
}

TEST_CASE("lines below the configured level are left out", "[core][logging]") {
  ChildOutcome child = runInChild([] {
    core::configureJsonLogging("test", "warn");
    spdlog::info("not shown");
    spdlog::error("shown");
    return 0;
  });
  REQUIRE(child.exited);
  std::vector<std::string> written = lines(child.err);
  REQUIRE(written.size() == 1);
  nlohmann::json line = nlohmann::json::parse(written[0]);
  CHECK(line["level"] == "error");
  CHECK(line["msg"] == "shown");
}

TEST_CASE("a message with quotes, backslashes or line breaks stays one valid JSON line",
          "[core][logging]") {
  // What log lines quote comes from outside: request targets, Go's JSON syntax messages
  // ("invalid character '\"' after object key"), a peer's error text.
  const std::string message = "bad target \"/a\\b\"\n\tnext: \x01 <end>";
  ChildOutcome child = runInChild([&] {
    core::configureJsonLogging("test", "info");
    spdlog::warn("{}", message);
    return 0;
  });
  REQUIRE(child.exited);
  std::vector<std::string> written = lines(child.err);
  REQUIRE(written.size() == 1);
  nlohmann::json line = nlohmann::json::parse(written[0], nullptr, false);
  REQUIRE_FALSE(line.is_discarded());
  CHECK(line["msg"] == message);
}

TEST_CASE("levels are named as Go's zap names them (warn, not warning)", "[core][logging]") {
  ChildOutcome child = runInChild([] {
    core::configureJsonLogging("test", "debug");
    spdlog::debug("d");
    spdlog::info("i");
    spdlog::warn("w");
    spdlog::error("e");
    return 0;
  });
  REQUIRE(child.exited);
  std::vector<std::string> written = lines(child.err);
  REQUIRE(written.size() == 4);
  std::vector<std::string> levels;
  for (const auto& text : written)
    levels.push_back(nlohmann::json::parse(text)["level"]);
  CHECK(levels == std::vector<std::string>{"debug", "info", "warn", "error"});
}
