#include "agent/config.h"

#include <catch2/catch.hpp>
#include <map>
#include <regex>

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

TEST_CASE("blob --log-url: accepted with a store path, refused with a line naming the flag",
          "[agent][config]") {
  for (const char* url : {"s3://logs/prefix", "gs://logs", "abfs://container@account/p/q"}) {
    auto result = parse({"--log-url", url, "--log-store-path", "logger", "--log-store-format",
                         "parquet", "--log-batch-size", "10", "--log-batch-interval", "5s"});
    INFO(url << ": " << result.message);
    REQUIRE(result.config);
    CHECK(result.config->logStorePath == "logger");
    CHECK(result.config->logBatchSize == 10);
    CHECK(result.config->logBatchInterval == std::chrono::seconds(5));
    CHECK(loggerOptions(*result.config, nullptr).logStoreFormat == "parquet");
  }
  struct Refusal {
    std::vector<std::string> args;
    std::string says;
  };
  for (const Refusal& refusal : std::vector<Refusal>{
           {{"--log-url", "s3://logs/prefix"}, "needs --log-store-path"},
           {{"--log-url", "s3a://logs/prefix", "--log-store-path", "p"}, "--log-url"},
           {{"--log-url", "gs:///prefix", "--log-store-path", "p"}, "no bucket"},
           {{"--log-url", "s3://logs", "--log-store-path", "p", "--log-store-format", "avro"},
            "--log-store-format"},
           {{"--log-url", "s3://logs", "--log-store-path", "../../up"}, "--log-store-path"},
       }) {
    auto result = parse(refusal.args);
    INFO(refusal.args[1] << ": " << result.message);
    CHECK_FALSE(result.config);
    CHECK(result.exitCode == 2);
    CHECK_THAT(result.message, Catch::Contains(refusal.says));
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

TEST_CASE("malformed values are named as typed, in one message format", "[agent][config]") {
  struct Case {
    std::vector<std::string> args;
    std::string line;
  };
  for (
      const auto& c : std::vector<Case>{
          {{"--port=abc"}, R"(invalid value "abc" for --port: must be a TCP port (1-65535))"},
          {{"--port", "-1"}, R"(invalid value "-1" for --port: must be a TCP port (1-65535))"},
          {{"--component-port="},
           R"(invalid value "" for --component-port: must be a TCP port (1-65535))"},
          {{"--metrics-port", "x1"},
           R"(invalid value "x1" for --metrics-port: must be a TCP port (0-65535))"},
          {{"--workers=abc"},
           R"(invalid value "abc" for --workers: must be an integer between 1 and 1000)"},
          {{"--workers", "1.5"},
           R"(invalid value "1.5" for --workers: must be an integer between 1 and 1000)"},
          {{"--threads", "99999999999999999999"},
           R"(invalid value "99999999999999999999" for --threads: must be an integer between 1 and 256)"},
          {{"--max-header-bytes=1x"},
           R"(invalid value "1x" for --max-header-bytes: must be a positive integer)"},
          {{"--log-queue-bytes", "-1"},
           R"(invalid value "-1" for --log-queue-bytes: must be a positive integer)"},
          {{"--puller-retries", "abc"},
           R"(invalid value "abc" for --puller-retries: must be an integer of at least 0)"},
          {{"--log-retries=0"},
           R"(invalid value "0" for --log-retries: must be an integer of at least 1)"},
          {{"--log-batch-size", "many"},
           R"(invalid value "many" for --log-batch-size: must be an integer)"},
          {{"--upstream-timeout=soon"},
           R"(invalid value "soon" for --upstream-timeout: must be a duration such as 500ms, 30s or 1m30s)"},
          {{"--enable-batcher=yes"},
           R"(invalid value "yes" for --enable-batcher: must be a boolean (1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False))"},
          {{"--log-mode", "some"},
           R"(invalid value "some" for --log-mode: must be all, request or response)"},
          {{"--unknown=3"}, R"(unknown flag "--unknown")"},
          {{"-port", "9000"}, R"(unknown flag "-port")"},
          {{"stray"}, R"(unexpected argument "stray": every setting is a --flag)"},
          {{"--enable-batcher", "1"}, R"(unexpected argument "1": every setting is a --flag)"},
          {{"--component-port"}, R"(missing value for --component-port (PORT))"},
      }) {
    auto result = parse(c.args);
    INFO(c.args[0]);
    CHECK_FALSE(result.config);
    CHECK(result.exitCode == 2);
    CHECK(result.message == "kserve-agent: " + c.line + "\nRun with --help for usage.");
  }
}

TEST_CASE("a repeated flag has every value checked, and the last one taken", "[agent][config]") {
  auto bad = parse({"--component-port=abc", "--component-port=2"});
  CHECK(bad.exitCode == 2);
  CHECK_THAT(bad.message, Catch::Contains(R"("abc" for --component-port)"));
  auto badLast = parse({"--workers", "2", "--workers", "x"});
  CHECK(badLast.exitCode == 2);
  CHECK_THAT(badLast.message, Catch::Contains(R"("x" for --workers)"));
  auto good = parse({"--component-port=1", "--component-port", "2", "--enable-batcher=false",
                     "--enable-batcher"});
  REQUIRE(good.config);
  CHECK(good.config->componentPort == 2);
  CHECK(good.config->enableBatcher);
}

TEST_CASE("bool flags take exactly what Go's strconv.ParseBool takes", "[agent][config]") {
  for (const char* value : {"1", "t", "T", "TRUE", "true", "True"}) {
    auto result = parse({std::string("--enable-batcher=") + value});
    INFO(value);
    REQUIRE(result.config);
    CHECK(result.config->enableBatcher);
  }
  for (const char* value : {"0", "f", "F", "FALSE", "false", "False"}) {
    auto result = parse({std::string("--io-uring=") + value});
    INFO(value);
    REQUIRE(result.config);
    CHECK_FALSE(result.config->ioUring);
  }
  for (const char* value :
       {"yes", "no", "on", "off", "2", "-1", "", "tRUE", "fALSE", "y", "n", " true", "true "}) {
    auto result = parse({std::string("--logger-tls-skip-verify=") + value});
    INFO('"' << value << '"');
    CHECK_FALSE(result.config);
    CHECK(result.exitCode == 2);
    CHECK_THAT(result.message,
               Catch::Contains("invalid value \"" + std::string(value) +
                               "\" for --logger-tls-skip-verify: must be a boolean"));
  }
}

TEST_CASE("help shows for each flag a type that matches what the flag takes", "[agent][config]") {
  std::string help = parse({"--help"}).message;
  // One sample value each type takes, and one it refuses.
  const std::map<std::string, std::pair<std::string, std::string>> samples = {
      {"PORT", {"8081", "70000"}},     {"INT", {"7", "7x"}},
      {"BOOL", {"t", "yes"}},          {"DURATION", {"1m30s", "90"}},
      {"LIST", {"a=b,c=d", ""}},       {"MODE", {"request", "all,request"}},
      {"LEVEL", {"debug", "verbose"}}, {"URL", {"http://sink:8080/", ""}},
      {"URI", {"urn:x", ""}},          {"TEXT", {"any text", ""}},
      {"DIR", {"/tmp", ""}},           {"FILE", {"ca.crt", ""}},
      {"PATH", {"@/x.sock", ""}},
  };
  // "  --name TYPE[=default]  help": every flag line of the help.
  std::regex line(R"(\n  (--[a-z0-9-]+) ([A-Z]+)(=(\S*))?)");
  size_t flags = 0;
  for (auto it = std::sregex_iterator(help.begin(), help.end(), line); it != std::sregex_iterator();
       ++it) {
    std::string name = (*it)[1];
    std::string type = (*it)[2];
    INFO(name << " " << type);
    ++flags;
    REQUIRE(samples.contains(type));
    const auto& [good, bad] = samples.at(type);
    // The default shown is a value of the type, and so is the sample.
    if ((*it)[3].matched) CHECK(parse({name + "=" + std::string((*it)[4])}).config);
    auto accepted = parse({name + "=" + good});
    INFO(accepted.message);
    CHECK(accepted.config);
    if (!bad.empty()) {
      auto refused = parse({name + "=" + bad});
      CHECK(refused.exitCode == 2);
      CHECK_THAT(refused.message, Catch::Contains("\"" + bad + "\" for " + name));
    }
  }
  CHECK(flags == 53);  // 26 upstream flags and 27 of ours
  CHECK_THAT(help, Catch::Contains("--port PORT=9081") &&
                       Catch::Contains("--enable-batcher BOOL=false") &&
                       Catch::Contains("--max-batchsize INT=32") &&
                       Catch::Contains("--quiet-period DURATION=30s"));
}
