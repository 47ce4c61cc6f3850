// Sidecar operations with the real binary: probe answers, readiness from
// SERVING_READINESS_PROBE, the drain sequence on SIGTERM, the unix socket and metrics.
#include <signal.h>
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/peers.h"

using namespace testsupport;

namespace {

const std::vector<std::string> kKubelet = {"User-Agent: kube-probe/1.30", "K-Network-Probe: queue"};

HttpResponse probe(const Agent& agent, std::vector<std::string> headers = kKubelet) {
  return httpRequest(agent.url("/"), {.headers = std::move(headers), .timeout = 15s});
}

std::string tcpProbe(uint16_t port) {
  return R"({"tcpSocket":{"port":)" + std::to_string(port) +
         R"(,"host":"127.0.0.1"},"timeoutSeconds":1,"periodSeconds":10})";
}

}  // namespace

TEST_CASE("kubelet probes: 200 queue when the model is ready, 503 when not, 400 on a bad header",
          "[ops]") {
  ModelServer model;
  Agent agent(model.port(), {}, {{"SERVING_READINESS_PROBE", tcpProbe(model.port())}});
  HttpResponse ready = probe(agent);
  CHECK(ready.status == 200);
  CHECK(ready.body == "queue");

  HttpResponse activator =
      probe(agent, {"User-Agent: Knative-Activator-Probe", "K-Network-Probe: queue"});
  CHECK(activator.status == 200);

  HttpResponse wrong = probe(agent, {"User-Agent: kube-probe/1.30", "K-Network-Probe: other"});
  CHECK(wrong.status == 400);
  CHECK(wrong.body == "unexpected probe header value: other\n");

  // The probe is answered by the agent on any path and never reaches the model server.
  size_t before = model.recordedLines().size();
  probe(agent);
  CHECK(model.recordedLines().size() == before);

  model.stop();
  HttpResponse down = probe(agent);
  CHECK(down.status == 503);
  CHECK(down.body.empty());
}

TEST_CASE("network probes echo K-Network-Hash and need it", "[ops]") {
  ModelServer model;
  Agent agent(model.port());
  HttpResponse ok = probe(agent, {"K-Network-Probe: probe", "K-Network-Hash: abc123"});
  CHECK(ok.status == 200);
  CHECK(ok.header("k-network-hash") == "abc123");
  HttpResponse missing = probe(agent, {"K-Network-Probe: probe"});
  CHECK(missing.status == 400);
  CHECK_THAT(missing.body, Catch::Contains("K-Network-Hash"));
}

TEST_CASE("readiness follows SERVING_READINESS_PROBE handlers", "[ops]") {
  ModelServer model;
  uint16_t closedPort = freePort();
  struct Case {
    std::string probeJson;
    std::map<std::string, std::string> extraEnv;
    long expected;
  };
  std::string http = R"({"httpGet":{"path":"/echo","port":)" + std::to_string(model.port()) +
                     R"(,"httpHeaders":[{"name":"X-Probe","value":"yes"}]},"timeoutSeconds":2})";
  std::string httpFailing = R"({"httpGet":{"path":"/echo?status=500","port":)" +
                            std::to_string(model.port()) + R"(},"timeoutSeconds":2})";
  std::vector<Case> cases = {
      {http, {}, 200},
      {httpFailing, {}, 503},
      {tcpProbe(closedPort), {}, 503},
      // The attempt's timeout in milliseconds does not fit 32 bits.
      {R"({"tcpSocket":{"port":)" + std::to_string(model.port()) + R"(},"timeoutSeconds":3000000})",
       {},
       200},
      {R"({"exec":{"command":["true"]}})", {}, 503},
      {"", {}, 200},
      {"[" + tcpProbe(model.port()) + "," + http + "]",
       {{"ENABLE_MULTI_CONTAINER_PROBES", "true"}},
       200},
      {"[" + tcpProbe(model.port()) + "," + tcpProbe(closedPort) + "]",
       {{"ENABLE_MULTI_CONTAINER_PROBES", "true"}},
       503},
  };
  for (const auto& c : cases) {
    auto env = c.extraEnv;
    env["SERVING_READINESS_PROBE"] = c.probeJson;
    Agent agent(model.port(), {}, env);
    INFO("probe " << c.probeJson);
    CHECK(probe(agent).status == c.expected);
  }
  bool sawProbeHeaders = false;
  for (const auto& line : model.recordedLines()) {
    auto entry = nlohmann::json::parse(line);
    for (const auto& h : entry["headers"]) {
      if (h[0] == "X-Probe" && h[1] == "yes") sawProbeHeaders = true;
    }
  }
  CHECK(sawProbeHeaders);
}

TEST_CASE("the aggressive probe (periodSeconds 0) retries until the model comes up", "[ops]") {
  uint16_t modelPort = freePort();
  std::string aggressive = R"({"tcpSocket":{"port":)" + std::to_string(modelPort) +
                           R"(},"periodSeconds":0,"successThreshold":1})";
  Agent agent(modelPort, {}, {{"SERVING_READINESS_PROBE", aggressive}});
  auto answer = std::async(std::launch::async, [&] { return probe(agent); });
  std::this_thread::sleep_for(500ms);
  ModelServer model({}, modelPort);
  CHECK(answer.get().status == 200);
}

TEST_CASE("concurrent probes share one in-flight check", "[ops]") {
  ModelServer model;
  std::string slow = R"({"httpGet":{"path":"/echo?delay_ms=700","port":)" +
                     std::to_string(model.port()) + R"(},"timeoutSeconds":5})";
  Agent agent(model.port(), {}, {{"SERVING_READINESS_PROBE", slow}});
  std::vector<std::future<HttpResponse>> answers;
  for (int i = 0; i < 6; ++i) {
    answers.push_back(std::async(std::launch::async, [&] { return probe(agent); }));
  }
  for (auto& a : answers)
    CHECK(a.get().status == 200);
  size_t checks = 0;
  for (const auto& line : model.recordedLines()) {
    if (line.find("delay_ms=700") != std::string::npos) ++checks;
  }
  CHECK(checks >= 1);
  CHECK(checks <= 2);
}

TEST_CASE("a malformed SERVING_READINESS_PROBE exits 2 with a message", "[ops]") {
  for (const char* value : {"{not json", "null", R"({"tcpSocket":{"port":70000}})",
                            R"({"tcpSocket":{"port":1},"timeoutSeconds":"1"})"}) {
    Process process(
        {builtBinary("kserve-agent"), "--port", std::to_string(freePort()), "--unix-socket="},
        {{"SERVING_READINESS_PROBE", value}});
    INFO(value);
    CHECK(process.wait(10s) == 2);
    CHECK_THAT(process.output(), Catch::Contains("SERVING_READINESS_PROBE"));
  }
}

TEST_CASE(
    "SIGTERM: probes fail, requests are served through the quiet period, in-flight "
    "requests finish, exit 0",
    "[ops]") {
  ModelServer model;
  Agent agent(model.port(), {"--quiet-period=1500ms"},
              {{"SERVING_READINESS_PROBE", tcpProbe(model.port())}});
  REQUIRE(probe(agent).status == 200);
  auto inFlight = std::async(
      std::launch::async, [&] { return httpRequest(agent.url("/echo?delay_ms=2500&size=100")); });
  std::this_thread::sleep_for(300ms);
  agent.process().signal(SIGTERM);
  std::this_thread::sleep_for(200ms);

  HttpResponse probed = probe(agent);
  CHECK(probed.status == 503);
  CHECK(probed.body == "shutting down\n");
  HttpResponse network = probe(agent, {"K-Network-Probe: probe", "K-Network-Hash: h"});
  CHECK(network.status == 503);

  // A request during the quiet period is served (and restarts the quiet period).
  HttpResponse during = httpRequest(agent.url("/echo?size=10"));
  CHECK(during.status == 200);
  CHECK(agent.process().running());

  HttpResponse finished = inFlight.get();
  CHECK(finished.status == 200);
  CHECK(finished.body.size() == 100);
  // The first signal is enough: the agent exits by itself once the quiet period has passed.
  CHECK(agent.waitForExit(15s) == 0);
  CHECK_THAT(agent.process().output(), Catch::Contains("Shutdown complete"));
  CHECK_FALSE(waitForPort(agent.port(), 200ms));
}

TEST_CASE("SIGTERM: a response still being written to a slow client is delivered whole", "[ops]") {
  ModelServer model;
  Agent agent(model.port(), {"--drain-timeout=20s"});
  constexpr size_t kSize = 12'000'000;
  auto socket = requestLargeBody(agent.port(), kSize);
  REQUIRE(socket != nullptr);
  std::string received =
      socket->readUntil([](const std::string& data) { return data.size() > 200'000; });
  REQUIRE(received.size() > 200'000);
  agent.process().signal(SIGTERM);
  // About a second and a half to read the rest, while the agent drains.
  char buffer[64 * 1024];
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < 20s) {
    ssize_t n = ::recv(socket->fd(), buffer, sizeof buffer, 0);
    if (n <= 0) break;
    received.append(buffer, static_cast<size_t>(n));
    std::this_thread::sleep_for(8ms);
  }
  const size_t headEnd = received.find("\r\n\r\n");
  REQUIRE(headEnd != std::string::npos);
  CHECK(received.size() - headEnd - 4 == kSize);
  CHECK(agent.waitForExit(15s) == 0);
}

TEST_CASE("a second signal exits at once", "[ops]") {
  ModelServer model;
  Agent agent(model.port(), {"--quiet-period=30s"});
  agent.process().signal(SIGTERM);
  std::this_thread::sleep_for(300ms);
  CHECK(agent.process().running());
  auto start = std::chrono::steady_clock::now();
  CHECK(agent.terminate(5s) == 1);
  CHECK(std::chrono::steady_clock::now() - start < 3s);
}

TEST_CASE("the unix socket serves the same chain", "[ops]") {
  ModelServer model;
  std::string name = "@/kserve-agent-test/" + std::to_string(::getpid()) + ".sock";
  Agent agent(model.port(), {"--unix-socket=" + name},
              {{"SERVING_READINESS_PROBE", tcpProbe(model.port())}});
  std::this_thread::sleep_for(100ms);
  HttpResponse proxied = httpRequest("http://localhost/echo?size=64", {.unixSocket = name});
  CHECK(proxied.status == 200);
  CHECK(proxied.body.size() == 64);
  HttpResponse probed = httpRequest("http://localhost/", {.headers = kKubelet, .unixSocket = name});
  CHECK(probed.status == 200);
  CHECK(probed.body == "queue");
}

TEST_CASE("the metrics endpoint counts requests by code and reports connections", "[ops]") {
  ModelServer model;
  uint16_t metricsPort = freePort();
  Agent agent(model.port(), {"--metrics-port", std::to_string(metricsPort)});
  REQUIRE(waitForPort(metricsPort));
  for (int i = 0; i < 3; ++i)
    httpRequest(agent.url("/echo"));
  httpRequest(agent.url("/echo?status=404"));
  HttpResponse metrics =
      httpRequest("http://127.0.0.1:" + std::to_string(metricsPort) + "/metrics");
  CHECK(metrics.status == 200);
  CHECK_THAT(metrics.body, Catch::Contains("kserve_agent_requests_total{code=\"200\"} 3"));
  CHECK_THAT(metrics.body, Catch::Contains("kserve_agent_requests_total{code=\"404\"} 1"));
  CHECK_THAT(metrics.body, Catch::Contains("kserve_agent_request_duration_seconds_count 4"));
  CHECK_THAT(metrics.body, Catch::Contains("kserve_agent_upstream_connections 1"));
  CHECK(httpRequest("http://127.0.0.1:" + std::to_string(metricsPort) + "/other").status == 404);
}

TEST_CASE("several event loops share the port and drain together", "[ops]") {
  ModelServer model;
  uint16_t metricsPort = freePort();
  Agent agent(model.port(), {"--threads", "2", "--metrics-port", std::to_string(metricsPort)},
              {{"SERVING_READINESS_PROBE", tcpProbe(model.port())}});
  REQUIRE(waitForPort(metricsPort));
  std::vector<std::future<long>> answers;
  for (int i = 0; i < 40; ++i) {
    answers.push_back(std::async(std::launch::async,
                                 [&] { return httpRequest(agent.url("/echo?size=100")).status; }));
  }
  for (auto& a : answers)
    CHECK(a.get() == 200);
  CHECK(probe(agent).status == 200);
  // Each loop counts an exchange once it has written the answer, so a scrape served by the
  // other loop may miss the last one for a moment.
  std::string expected = "kserve_agent_requests_total{code=\"200\"} 41";
  HttpResponse metrics;
  for (int attempt = 0; attempt < 40; ++attempt) {
    metrics = httpRequest("http://127.0.0.1:" + std::to_string(metricsPort) + "/metrics");
    if (metrics.body.find(expected) != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  CHECK_THAT(metrics.body, Catch::Contains(expected));
  CHECK(agent.terminate(15s) == 0);
}

TEST_CASE(
    "with the puller, probes pass once the initial models are loaded, and metrics count "
    "the operations",
    "[ops]") {
  ModelServer model;
  std::string source = makeTempDir("model-source");
  writeFile(source + "/model.bin", "weights");
  std::string configDir = makeTempDir("configs");
  std::string modelDir = makeTempDir("models");
  writeFile(configDir + "/models.json", R"([{"modelName":"m1","modelSpec":{"storageUri":")" +
                                            source +
                                            R"(","framework":"sklearn","memory":"1Mi"}}])");
  uint16_t metricsPort = freePort();
  Agent agent(model.port(),
              {"--enable-puller", "--config-dir", configDir, "--model-dir", modelDir,
               "--metrics-port", std::to_string(metricsPort)},
              {{"SERVING_READINESS_PROBE", tcpProbe(model.port())}});
  auto deadline = std::chrono::steady_clock::now() + 20s;
  long status = 0;
  while (std::chrono::steady_clock::now() < deadline && (status = probe(agent).status) != 200) {
    std::this_thread::sleep_for(50ms);
  }
  REQUIRE(status == 200);
  CHECK(readFile(modelDir + "/m1/model.bin") == "weights");
  bool loaded = false;
  for (const auto& line : model.recordedLines()) {
    loaded = loaded || line.find("/v2/repository/models/m1/load") != std::string::npos;
  }
  CHECK(loaded);
  HttpResponse metrics =
      httpRequest("http://127.0.0.1:" + std::to_string(metricsPort) + "/metrics");
  CHECK_THAT(
      metrics.body,
      Catch::Contains(
          R"(kserve_agent_puller_operations_total{operation="load",outcome="succeeded"} 1)"));
  CHECK_THAT(
      metrics.body,
      Catch::Contains(
          R"(kserve_agent_puller_operations_total{operation="download",outcome="succeeded"} 1)"));
}
