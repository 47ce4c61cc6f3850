#include "agent/config.h"

#include <catch2/catch.hpp>

using namespace agent;
using namespace std::chrono_literals;

namespace {

ParseResult parse(std::vector<std::string> args) {
  args.insert(args.begin(), "kserve-agent");
  std::vector<const char*> argv;
  for (const auto& a : args)
    argv.push_back(a.c_str());
  return parseConfig(static_cast<int>(argv.size()), argv.data());
}

}  // namespace

TEST_CASE("defaults match the upstream agent", "[agent][config]") {
  auto result = parse({});
  REQUIRE(result.config);
  const Config& c = *result.config;
  CHECK(c.port == 9081);
  CHECK(c.componentPort == 8080);
  CHECK_FALSE(c.enableBatcher);
  CHECK(c.maxBatchSize == 32);
  CHECK(c.maxLatencyMs == 5000);
  CHECK(c.configDir == "/mnt/configs");
  CHECK(c.modelDir == "/mnt/models");
  CHECK(c.workers == 5);
  CHECK(c.logMode == "all");
  CHECK(c.sourceUri == "http://localhost:9081/");
  CHECK(c.loggerCaCertFile == "service-ca.crt");
  CHECK(c.logMarshallerUrl == "http://localhost:9083/marshal");
  CHECK(c.quietPeriod == 30s);
  CHECK(c.unixSocket == "@/kserve/agent.sock");
}

TEST_CASE("both flag forms, bool values as separate words, lists", "[agent][config]") {
  auto result = parse({"--port=9000", "--component-port", "7000", "--enable-batcher",
                       "--logger-tls-skip-verify", "false", "--metadata-headers", "A,B",
                       "--metadata-headers=C", "--metadata-annotations", "k=v=w,x=y",
                       "--source-uri=", "--max-latency", "7"});
  REQUIRE(result.config);
  const Config& c = *result.config;
  CHECK(c.port == 9000);
  CHECK(c.componentPort == 7000);
  CHECK(c.enableBatcher);
  CHECK_FALSE(c.loggerTlsSkipVerify);
  CHECK(c.metadataHeaders == std::vector<std::string>{"A", "B", "C"});
  CHECK(c.metadataAnnotations == std::vector<std::string>{"k=v=w", "x=y"});
  CHECK(c.sourceUri == "http://localhost:9000/");
  CHECK(c.maxLatencyMs == 7);
  CHECK(parse({"--logger-tls-skip-verify", "true"}).config->loggerTlsSkipVerify);
  CHECK(parse({"--logger-tls-skip-verify=true"}).config->loggerTlsSkipVerify);
  CHECK(parse({}).config->ioUring);
  CHECK(parse({"--io-uring"}).config->ioUring);
  CHECK_FALSE(parse({"--io-uring=false"}).config->ioUring);
  CHECK_FALSE(parse({"--io-uring", "false"}).config->ioUring);
}

TEST_CASE("bad values exit 2 with the flag named", "[agent][config]") {
  for (auto args : std::vector<std::vector<std::string>>{
           {"--port", "0"},
           {"--max-batchsize", "-1"},
           {"--max-latency", "1.5"},
           {"--workers", "-3"},
           {"--log-mode", "some"},
           {"--log-batch-interval", "soon"},
           {"--threads", "0"},
           {"--max-header-bytes", "-1"},
           {"--max-connections", "-5"},
           {"--max-upstream-connections", "0"},
           {"--max-request-body-bytes", "-1"},
           {"--log-queue-events", "-1"},
           {"--puller-retries", "-1"},
           {"--log-url", "http://[::1"},
           {"--log-url", "http://127.0.0.1:99999/"},
           {"--log-url", "https://"},
           {"--log-url", "http://:8080/"},
           {"--log-url", "ftp://sink/"},
           {"--unknown"},
       }) {
    auto result = parse(args);
    INFO(args[0]);
    CHECK_FALSE(result.config);
    CHECK(result.exitCode == 2);
    CHECK_THAT(result.message, Catch::Contains(args[0]));
  }
}

TEST_CASE("help and version print and exit 0", "[agent][config]") {
  auto help = parse({"--help"});
  CHECK_FALSE(help.config);
  CHECK(help.exitCode == 0);
  CHECK_THAT(help.message, Catch::Contains("--max-batchsize"));
  auto version = parse({"--version"});
  CHECK(version.exitCode == 0);
  CHECK_THAT(version.message, Catch::Contains("kserve-agent"));
}

TEST_CASE("a flag given twice takes the last value and lists accumulate", "[agent][config]") {
  auto result = parse({"--port", "9000", "--port=9001", "--workers", "2", "--workers", "3",
                       "--metadata-headers", "a", "--metadata-headers", "b,c"});
  INFO(result.message);
  REQUIRE(result.config);
  CHECK(result.config->port == 9001);
  CHECK(result.config->workers == 3);
  CHECK(result.config->metadataHeaders == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("sink URLs in any case with user info and IPv6 literals are accepted",
          "[agent][config]") {
  for (const char* url : {"HTTP://sink.ns.svc/", "https://u:p@sink:8443/events?x=1",
                          "http://[::1]:9000", "http://sink"}) {
    auto result = parse({"--log-url", url});
    INFO(url << ": " << result.message);
    CHECK(result.config);
  }
}

TEST_CASE("loggerOptions takes the logger part of the flags", "[agent][config]") {
  Config config;
  config.logUrl = "http://127.0.0.1:9/";
  config.workers = 7;
  config.logMode = "request";
  config.metadataHeaders = {"a"};
  config.logQueueBytes = 123;
  config.logRetries = 9;
  config.loggerTlsSkipVerify = true;
  config.port = 9123;
  logger::Options options = loggerOptions(config, nullptr);
  CHECK(options.logUrl == config.logUrl);
  CHECK(options.workers == 7);
  CHECK(options.logMode == "request");
  CHECK(options.metadataHeaders == std::vector<std::string>{"a"});
  CHECK(options.logQueueBytes == 123);
  CHECK(options.logRetries == 9);
  CHECK(options.loggerTlsSkipVerify);
  CHECK(options.loggerCaCertDir == "/etc/tls/logger");
  CHECK(options.listenPort == 9123);
}
