// Command-line behaviour of the real binary: bad input exits 2 with one clear line.
#include <catch2/catch.hpp>

#include "tests/support/peers.h"

using namespace testsupport;

namespace {

struct Run {
  int status;
  std::string output;
};

Run runAgent(std::vector<std::string> args) {
  args.insert(args.begin(), builtBinary("kserve-agent"));
  Process process(args);
  int status = process.wait(10s);
  return {status, process.output()};
}

}  // namespace

TEST_CASE("unknown flag exits 2 naming the flag", "[flags]") {
  Run run = runAgent({"--no-such-flag"});
  CHECK(run.status == 2);
  CHECK_THAT(run.output, Catch::Contains("--no-such-flag"));
  CHECK_THAT(run.output, Catch::Contains("--help"));
}

TEST_CASE("malformed values exit 2 naming flag and value", "[flags]") {
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  std::vector<Case> cases = {
      {{"--port", "http"}, "--port"},
      {{"--component-port", "70000"}, "--component-port"},
      {{"--max-batchsize", "0"}, "\"0\" for --max-batchsize"},
      {{"--max-latency", "fast"}, "\"fast\" for --max-latency"},
      {{"--log-mode", "everything"}, "\"everything\" for --log-mode"},
      {{"--metadata-annotations", "novalue"}, "\"novalue\" for --metadata-annotations"},
      {{"--workers", "0"}, "--workers"},
      {{"--quiet-period", "5 parsecs"}, "--quiet-period"},
      {{"--log-url", "not a url"}, "--log-url"},
  };
  for (const auto& c : cases) {
    Run run = runAgent(c.args);
    INFO(c.args[0] << " " << c.args[1] << " -> " << run.output);
    CHECK(run.status == 2);
    CHECK_THAT(run.output, Catch::Contains(c.expected));
  }
}

TEST_CASE("the agent's --help lists every upstream flag with its default, --version prints it",
          "[flags]") {
  Run help = runAgent({"--help"});
  CHECK(help.status == 0);
  for (const char* flag : {"--port",
                           "--component-port",
                           "--enable-batcher",
                           "--max-batchsize",
                           "--max-latency",
                           "--enable-puller",
                           "--config-dir",
                           "--model-dir",
                           "--log-url",
                           "--workers",
                           "--source-uri",
                           "--log-mode",
                           "--log-store-path",
                           "--log-store-format",
                           "--log-marshaller-url",
                           "--log-marshaller-port",
                           "--log-batch-size",
                           "--log-batch-interval",
                           "--inference-service",
                           "--namespace",
                           "--endpoint",
                           "--component",
                           "--metadata-headers",
                           "--metadata-annotations",
                           "--logger-ca-cert-file",
                           "--logger-tls-skip-verify"}) {
    CHECK_THAT(help.output, Catch::Contains(flag));
  }
  CHECK_THAT(help.output, Catch::Contains("9081"));
  CHECK_THAT(help.output, Catch::Contains("/mnt/models"));
  Run version = runAgent({"--version"});
  CHECK(version.status == 0);
  CHECK_THAT(version.output, Catch::Contains("kserve-agent"));
}

TEST_CASE("a bool flag followed by a literal false is false, as the webhook means it", "[flags]") {
  ModelServer model;
  // "--logger-tls-skip-verify false" as two words must not leave a stray positional argument.
  Agent agent(model.port(), {"--logger-tls-skip-verify", "false", "--enable-batcher", "false"});
  HttpResponse r = httpRequest(agent.url("/v1/models/m:predict"),
                               {.method = "POST", .body = R"({"instances":[1]})"});
  CHECK(r.status == 200);
  // With the batcher off the model's own answer comes back, not a batcher envelope.
  CHECK(r.body == R"({"predictions":[1]})");
}

TEST_CASE("values are named as typed, booleans are Go's, repeated flags are each checked",
          "[flags]") {
  struct Case {
    std::vector<std::string> args;
    std::string line;
  };
  for (const auto& c : std::vector<Case>{
           {{"--port=abc"}, R"(invalid value "abc" for --port: must be a TCP port (1-65535))"},
           {{"--component-port="},
            R"(invalid value "" for --component-port: must be a TCP port (1-65535))"},
           {{"--workers=abc"},
            R"(invalid value "abc" for --workers: must be an integer between 1 and 1000)"},
           {{"--component-port=abc", "--component-port=9000"},
            R"(invalid value "abc" for --component-port: must be a TCP port (1-65535))"},
           {{"--enable-batcher=yes"},
            R"(invalid value "yes" for --enable-batcher: must be a boolean)"},
           {{"--enable-batcher=on"},
            R"(invalid value "on" for --enable-batcher: must be a boolean)"},
           {{"--enable-batcher=2"}, R"(invalid value "2" for --enable-batcher: must be a boolean)"},
       }) {
    Run run = runAgent(c.args);
    INFO(c.args[0] << " -> " << run.output);
    CHECK(run.status == 2);
    CHECK_THAT(run.output, Catch::StartsWith("kserve-agent: " + c.line));
    CHECK_THAT(run.output, Catch::Contains("Run with --help for usage."));
  }
}
