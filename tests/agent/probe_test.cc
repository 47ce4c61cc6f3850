#include "agent/probe.h"

#include <catch2/catch.hpp>

using namespace agent;

TEST_CASE("an absent SERVING_READINESS_PROBE probes TCP on the component port", "[agent][probe]") {
  std::string error;
  auto spec = parseReadiness(nullptr, false, 8123, error);
  REQUIRE(spec);
  CHECK_FALSE(spec->alwaysReady);
  REQUIRE(spec->probes.size() == 1);
  CHECK(spec->probes[0].kind == ProbeSpec::Kind::Tcp);
  CHECK(spec->probes[0].port == 8123);
}

TEST_CASE("an empty SERVING_READINESS_PROBE is always ready", "[agent][probe]") {
  std::string error;
  auto spec = parseReadiness("", false, 8080, error);
  REQUIRE(spec);
  CHECK(spec->alwaysReady);
}

TEST_CASE("probe handlers parse as Kubernetes writes them", "[agent][probe]") {
  std::string error;
  auto spec = parseReadiness(
      R"({"httpGet":{"path":"v2/health/ready","port":"8085","host":"127.0.0.2","scheme":"HTTP",
          "httpHeaders":[{"name":"A","value":"b"}]},"timeoutSeconds":3,"periodSeconds":0,
          "successThreshold":2})",
      false, 8080, error);
  REQUIRE(spec);
  const ProbeSpec& p = spec->probes[0];
  CHECK(p.kind == ProbeSpec::Kind::Http);
  CHECK(p.path == "/v2/health/ready");
  CHECK(p.port == 8085);
  CHECK(p.host == "127.0.0.2");
  CHECK(p.headers.size() == 1);
  CHECK(p.timeoutSeconds == 3);
  CHECK(p.periodSeconds == 0);
  CHECK(p.successThreshold == 2);

  auto named = parseReadiness(R"({"tcpSocket":{"port":"http"}})", false, 8099, error);
  REQUIRE(named);
  CHECK(named->probes[0].port == 8099);

  auto exec = parseReadiness(R"({"exec":{"command":["x"]}})", false, 8080, error);
  REQUIRE(exec);
  CHECK(exec->probes[0].kind == ProbeSpec::Kind::Exec);

  auto multi =
      parseReadiness(R"([{"tcpSocket":{"port":1}},{"tcpSocket":{"port":2}}])", true, 8080, error);
  REQUIRE(multi);
  CHECK(multi->probes.size() == 2);
}

TEST_CASE("malformed probes are errors with a reason", "[agent][probe]") {
  for (auto [value, multi] : std::vector<std::pair<const char*, bool>>{
           {"{", false},
           {"null", false},
           {"[]", false},
           {R"({"tcpSocket":{"port":0}})", false},
           {R"({"tcpSocket":{"port":1}})", true},
           {R"({"tcpSocket":{"port":1},"timeoutSeconds":"1"})", false},
           {R"({"tcpSocket":{"port":1},"timeoutSeconds":-1})", false},
           {R"({"tcpSocket":{"port":1},"timeoutSeconds":3000000000})", false},
           {R"({"tcpSocket":{"port":1},"periodSeconds":1.5})", false},
           {R"({"tcpSocket":{"port":1,"host":5}})", false},
           {R"({"httpGet":{"port":1,"path":7}})", false},
           {R"({"httpGet":{"port":1,"scheme":[]}})", false},
           {R"({"httpGet":{"port":1,"httpHeaders":[1]}})", false},
           {R"({"httpGet":{"port":1,"httpHeaders":[{"name":1,"value":"v"}]}})", false},
       }) {
    std::string error;
    INFO(value);
    CHECK_FALSE(parseReadiness(value, multi, 8080, error));
    CHECK_FALSE(error.empty());
  }
}

TEST_CASE("null probe fields take their defaults and a large timeout stays exact",
          "[agent][probe]") {
  std::string error;
  auto spec = parseReadiness(
      R"({"tcpSocket":{"port":1,"host":null},"successThreshold":null,"timeoutSeconds":3000000})",
      false, 8080, error);
  INFO(error);
  REQUIRE(spec);
  CHECK(spec->probes[0].successThreshold == 1);
  CHECK(spec->probes[0].timeoutSeconds == 3000000);
}
