// The logger end to end: the real kserve-agent between a real client, the sample model server
// and the CloudEvents sink (tests/support/ce_sink.js).
#include <signal.h>

#include <catch2/catch.hpp>
#include <future>
#include <map>
#include <thread>

#include "tests/logger/helpers.h"
#include "tests/support/peers.h"

using namespace std::chrono_literals;
using logtest::Sink;
using testsupport::Agent;
using testsupport::HttpOptions;
using testsupport::HttpResponse;
using testsupport::ModelServer;

namespace {

constexpr const char* kRequestType = "org.kubeflow.serving.inference.request";
constexpr const char* kResponseType = "org.kubeflow.serving.inference.response";

HttpResponse post(const Agent& agent, const std::string& path, const std::string& body,
                  const std::string& contentType, std::vector<std::string> headers = {}) {
  HttpOptions options;
  options.method = "POST";
  options.body = body;
  options.headers = std::move(headers);
  if (!contentType.empty()) options.headers.push_back("Content-Type: " + contentType);
  return testsupport::httpRequest(agent.url(path), options);
}

// The events of one id, by type.
struct Pair {
  const nlohmann::json* request = nullptr;
  const nlohmann::json* response = nullptr;
};

std::map<std::string, Pair> byId(const std::vector<nlohmann::json>& events) {
  std::map<std::string, Pair> pairs;
  for (const auto& event : events) {
    auto& pair = pairs[event.value("id", std::string())];
    (event["type"] == kRequestType ? pair.request : pair.response) = &event;
  }
  return pairs;
}

std::vector<std::string> withLogger(const Sink& sink, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--log-url", sink.url()};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// The value of one sample in Prometheus text format (-1 when absent).
double metricValue(const std::string& text, const std::string& sample) {
  size_t at = text.find("\n" + sample + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + sample.size() + 2));
}

std::string sinkUrlOnPort(uint16_t port) {
  return "http://127.0.0.1:" + std::to_string(port) + "/";
}

}  // namespace

TEST_CASE("Agent: request and response events share an id and carry the exact bodies",
          "[logger][integration]") {
  ModelServer model;
  Sink sink;
  Agent agent(model.port(), withLogger(sink));
  struct Case {
    std::string path;
    std::string body;
    std::string contentType;
  };
  std::string json = R"({"instances":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]],"note":"<&>é"})";
  std::vector<Case> cases = {
      {"/echo", "", "application/json"},
      {"/echo", json, "application/json"},
      {"/echo?chunked=1", json, "application/json"},
      {"/echo", logtest::patternBytes(1), "application/octet-stream"},
      {"/echo", logtest::patternBytes(64 * 1024 + 3), "application/octet-stream"},
      {"/echo?chunked=1", logtest::patternBytes(1 << 20), "application/octet-stream"},
      {"/echo", logtest::patternBytes(5 << 20), "application/octet-stream"},
  };
  std::map<std::string, const Case*> expected;
  for (const auto& c : cases) {
    std::string id = "case-" + std::to_string(expected.size());
    HttpResponse r = post(agent, c.path, c.body, c.contentType, {"Ce-Id: " + id});
    REQUIRE(r.status == 200);
    REQUIRE(r.body == c.body);
    expected[id] = &c;
  }
  // The model server received every request byte for byte: the logger only observes.
  auto received = model.recordedLines();
  REQUIRE(received.size() == cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    auto line = nlohmann::json::parse(received[i]);
    CHECK(logtest::base64Decode(line["body_b64"].get<std::string>()) == cases[i].body);
  }
  auto events = sink.waitForEvents(2 * cases.size(), 60s);
  REQUIRE(events.size() == 2 * cases.size());
  auto pairs = byId(events);
  for (const auto& [id, c] : expected) {
    INFO(id << " " << c->path << " " << c->body.size() << " bytes");
    const Pair& pair = pairs[id];
    REQUIRE(pair.request != nullptr);
    REQUIRE(pair.response != nullptr);
    CHECK(logtest::eventBody(*pair.request) == c->body);
    CHECK(logtest::eventBody(*pair.response) == c->body);
    CHECK((*pair.request)["datacontenttype"] == c->contentType);
    CHECK((*pair.response)["datacontenttype"] == c->contentType);
    CHECK((*pair.request)["source"] == "http://localhost:" + std::to_string(agent.port()) + "/");
    CHECK((*pair.request)["specversion"] == "1.0");
    CHECK(logtest::eventHeader(*pair.request, "ce-metadata") == "{}");
    CHECK(logtest::eventHeader(*pair.request, "ce-time") <=
          logtest::eventHeader(*pair.response, "ce-time"));
  }
}

TEST_CASE("Agent: a new UUIDv4 id without Ce-Id, and the response content type",
          "[logger][integration]") {
  ModelServer model;
  Sink sink;
  Agent agent(model.port(), withLogger(sink));
  HttpResponse r = post(agent, "/echo?ctype=text/csv", "a,b\n1,2\n", "text/plain");
  REQUIRE(r.status == 200);
  auto events = sink.waitForEvents(2);
  REQUIRE(events.size() == 2);
  auto pairs = byId(events);
  REQUIRE(pairs.size() == 1);
  const auto& [id, pair] = *pairs.begin();
  CHECK(id.size() == 36);
  CHECK(id[14] == '4');
  REQUIRE(pair.request != nullptr);
  REQUIRE(pair.response != nullptr);
  CHECK((*pair.request)["datacontenttype"] == "text/plain");
  CHECK((*pair.response)["datacontenttype"] == "text/csv");
}

TEST_CASE("Agent: events reuse one kept-alive connection to the sink", "[logger][integration]") {
  ModelServer model;
  Sink sink;
  Agent agent(model.port(), withLogger(sink, {"--workers", "1"}));
  for (int i = 0; i < 3; ++i)
    REQUIRE(post(agent, "/echo", "x", "text/plain").status == 200);
  auto events = sink.waitForEvents(6);
  REQUIRE(events.size() == 6);
  for (const auto& event : events)
    CHECK(event["remotePort"] == events[0]["remotePort"]);
}

TEST_CASE("Agent: --log-mode request and response log one side only", "[logger][integration]") {
  ModelServer model;
  for (std::string mode : {"request", "response"}) {
    Sink sink;
    Agent agent(model.port(), withLogger(sink, {"--log-mode", mode}));
    for (int i = 0; i < 3; ++i)
      REQUIRE(post(agent, "/echo", "x", "text/plain").status == 200);
    auto events = sink.waitForEvents(3);
    std::this_thread::sleep_for(300ms);
    events = sink.events();
    CHECK(events.size() == 3);
    for (const auto& event : events) {
      CHECK(event["type"] == (mode == "request" ? kRequestType : kResponseType));
    }
  }
}

TEST_CASE("Agent: metadata headers, annotations and identity flags become extensions",
          "[logger][integration]") {
  ModelServer model;
  Sink sink;
  Agent agent(
      model.port(),
      withLogger(sink, {"--metadata-headers", "x-request-id,Foo", "--metadata-annotations",
                        "serving.kserve.io/team=ml,cost=a=b", "--inference-service", "sklearn-iris",
                        "--namespace", "models", "--endpoint", "default", "--component",
                        "predictor", "--source-uri", "sklearn-iris-predictor-7d9f"}));
  REQUIRE(post(agent, "/echo", "{}", "application/json",
               {"X-Request-ID: r-1", "foo: bar", "Ignored: x", "Ce-Id: meta"})
              .status == 200);
  auto events = sink.waitForEvents(2);
  REQUIRE(events.size() == 2);
  for (const auto& event : events) {
    CHECK(event["id"] == "meta");
    CHECK(event["source"] == "sklearn-iris-predictor-7d9f");
    CHECK(event["extensions"]["metadata"] == R"({"Foo":["bar"],"X-Request-Id":["r-1"]})");
    CHECK(event["extensions"]["annotations"] == R"({"cost":"a=b","serving.kserve.io/team":"ml"})");
    CHECK(event["extensions"]["inferenceservicename"] == "sklearn-iris");
    CHECK(event["extensions"]["namespace"] == "models");
    CHECK(event["extensions"]["endpoint"] == "default");
    CHECK(event["extensions"]["component"] == "predictor");
  }
}

TEST_CASE("Agent: non-200 responses are logged only with --log-all-responses",
          "[logger][integration]") {
  ModelServer model;
  Sink plainSink;
  Sink allSink;
  Agent plain(model.port(), withLogger(plainSink));
  Agent all(model.port(), withLogger(allSink, {"--log-all-responses"}));
  REQUIRE(post(plain, "/echo?status=404", "nf", "text/plain", {"Ce-Id: p"}).status == 404);
  REQUIRE(post(all, "/echo?status=503", "busy", "text/plain", {"Ce-Id: a"}).status == 503);
  REQUIRE(post(all, "/echo", "fine", "text/plain", {"Ce-Id: b"}).status == 200);
  auto allEvents = allSink.waitForEvents(4);
  REQUIRE(allEvents.size() == 4);
  auto pairs = byId(allEvents);
  REQUIRE(pairs["a"].response != nullptr);
  CHECK((*pairs["a"].response)["extensions"]["statuscode"] == "503");
  CHECK(logtest::eventBody(*pairs["a"].response) == "busy");
  REQUIRE(pairs["b"].response != nullptr);
  CHECK((*pairs["b"].response)["extensions"]["statuscode"] == "200");
  auto plainEvents = plainSink.waitForEvents(1);
  std::this_thread::sleep_for(300ms);
  plainEvents = plainSink.events();
  REQUIRE(plainEvents.size() == 1);
  CHECK(plainEvents[0]["type"] == kRequestType);
}

TEST_CASE("Agent: the agent's own 502 is logged with --log-all-responses",
          "[logger][integration]") {
  Sink sink;
  Agent agent(testsupport::freePort(), withLogger(sink, {"--log-all-responses"}));
  HttpResponse r = post(agent, "/v1/models/m:predict", "{}", "application/json", {"Ce-Id: down"});
  REQUIRE(r.status == 502);
  auto events = sink.waitForEvents(2);
  auto pairs = byId(events);
  REQUIRE(pairs["down"].request != nullptr);
  REQUIRE(pairs["down"].response != nullptr);
  CHECK((*pairs["down"].response)["extensions"]["statuscode"] == "502");
  CHECK(logtest::eventBody(*pairs["down"].response) == r.body);
  CHECK((*pairs["down"].response)["datacontenttype"] == r.header("content-type"));
}

TEST_CASE("Agent: a streamed response is logged whole once it ends", "[logger][integration]") {
  ModelServer model;
  Sink sink;
  Agent agent(model.port(), withLogger(sink));
  HttpOptions options;
  options.headers = {"Ce-Id: stream"};
  HttpResponse r = testsupport::httpRequest(agent.url("/sse?n=4&interval_ms=30"), options);
  REQUIRE(r.status == 200);
  REQUIRE(r.body == "data: event 0\n\ndata: event 1\n\ndata: event 2\n\ndata: event 3\n\n");
  auto events = sink.waitForEvents(2);
  auto pairs = byId(events);
  REQUIRE(pairs["stream"].response != nullptr);
  CHECK(logtest::eventBody(*pairs["stream"].response) == r.body);
  CHECK((*pairs["stream"].response)["datacontenttype"] == "text/event-stream");
  REQUIRE(pairs["stream"].request != nullptr);
  CHECK(logtest::eventBody(*pairs["stream"].request).empty());
  CHECK_FALSE(logtest::hasEventHeader(*pairs["stream"].request, "content-type"));
}

TEST_CASE("Agent: kubelet probes are not logged", "[logger][integration]") {
  ModelServer model;
  Sink sink;
  Agent agent(model.port(), withLogger(sink));
  HttpOptions probe;
  probe.headers = {"User-Agent: kube-probe/1.29"};
  testsupport::httpRequest(agent.url("/v1/models/m"), probe);
  REQUIRE(post(agent, "/echo", "x", "text/plain", {"Ce-Id: real"}).status == 200);
  auto events = sink.waitForEvents(2);
  std::this_thread::sleep_for(300ms);
  events = sink.events();
  CHECK(events.size() == 2);
  for (const auto& event : events)
    CHECK(event["id"] == "real");
}

TEST_CASE("Agent: responses are logged when the batcher answers", "[logger][integration]") {
  ModelServer model;
  Sink sink;
  Agent agent(model.port(), withLogger(sink, {"--enable-batcher", "--max-batchsize", "1",
                                              "--max-latency", "50"}));
  HttpResponse r = post(agent, "/v1/models/m:predict", R"({"instances":[[1,2]]})",
                        "application/json", {"Ce-Id: batched"});
  REQUIRE(r.status == 200);
  auto events = sink.waitForEvents(2);
  auto pairs = byId(events);
  REQUIRE(pairs["batched"].request != nullptr);
  REQUIRE(pairs["batched"].response != nullptr);
  CHECK(logtest::eventBody(*pairs["batched"].response) == r.body);
  CHECK((*pairs["batched"].response)["datacontenttype"] == "application/json");
}

TEST_CASE("Agent: a sink that is down changes nothing for clients, events arrive once it is up",
          "[logger][integration]") {
  ModelServer model;
  uint16_t sinkPort = testsupport::freePort();
  Agent agent(model.port(), {"--log-url", sinkUrlOnPort(sinkPort), "--log-retries", "30"});
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    HttpResponse r = post(agent, "/echo", "body-" + std::to_string(i), "text/plain");
    REQUIRE(r.status == 200);
    CHECK(r.body == "body-" + std::to_string(i));
  }
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  std::this_thread::sleep_for(500ms);
  Sink sink(logtest::onPort(sinkPort));
  auto events = sink.waitForEvents(10, 30s);
  CHECK(events.size() == 10);
  CHECK(byId(events).size() == 5);
}

TEST_CASE("Agent: a sink answering 503 for a while gets every event once",
          "[logger][integration]") {
  ModelServer model;
  Sink sink(logtest::failingFirst(4));
  Agent agent(model.port(), withLogger(sink));
  for (int i = 0; i < 3; ++i) {
    REQUIRE(post(agent, "/echo", "x", "text/plain", {"Ce-Id: r" + std::to_string(i)}).status ==
            200);
  }
  auto events = sink.waitForEvents(6, 30s);
  std::this_thread::sleep_for(300ms);
  events = sink.events();
  CHECK(events.size() == 6);
  for (const auto& [id, pair] : byId(events)) {
    CHECK(pair.request != nullptr);
    CHECK(pair.response != nullptr);
  }
}

TEST_CASE("Agent: a slow sink never delays the client", "[logger][integration]") {
  ModelServer model;
  Sink sink(logtest::delayed(1500));
  Agent agent(model.port(), withLogger(sink, {"--workers", "5"}));
  for (int i = 0; i < 5; ++i) {
    auto start = std::chrono::steady_clock::now();
    REQUIRE(post(agent, "/echo", "x", "text/plain").status == 200);
    CHECK(std::chrono::steady_clock::now() - start < 1s);
  }
  CHECK(sink.waitForEvents(10, 30s).size() == 10);
}

TEST_CASE("Agent: a full queue drops events, counts them and says so", "[logger][integration]") {
  ModelServer model;
  Sink sink(logtest::delayed(1000));
  uint16_t metricsPort = testsupport::freePort();
  Agent agent(model.port(), withLogger(sink, {"--workers", "1", "--log-queue-events", "2",
                                              "--metrics-port", std::to_string(metricsPort)}));
  for (int i = 0; i < 10; ++i)
    REQUIRE(post(agent, "/echo", "x", "text/plain").status == 200);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (agent.process().output().find("dropped") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  CHECK_THAT(agent.process().output(), Catch::Contains("queue_full="));
  sink.waitForEvents(2, 10s);
  HttpResponse metrics =
      testsupport::httpRequest("http://127.0.0.1:" + std::to_string(metricsPort) + "/metrics");
  REQUIRE(metrics.status == 200);
  double dropped =
      metricValue(metrics.body, "kserve_agent_logger_events_dropped_total{reason=\"queue_full\"}");
  double sent = metricValue(metrics.body, "kserve_agent_logger_events_sent_total");
  double held = metricValue(metrics.body, "kserve_agent_logger_queue_events");
  CHECK(dropped >= 1);
  CHECK(held <= 2);
  // Every one of the 20 events is accounted for: sent, still held, or dropped.
  CHECK(dropped + sent + held == 20);
}

TEST_CASE("Agent: SIGTERM delivers the queued events before exiting", "[logger][integration]") {
  ModelServer model;
  Sink sink(logtest::delayed(100));
  Agent agent(model.port(), withLogger(sink, {"--workers", "1"}));
  for (int i = 0; i < 10; ++i)
    REQUIRE(post(agent, "/echo", "x", "text/plain").status == 200);
  CHECK(sink.events().size() < 20);
  CHECK(agent.terminate(30s) == 0);
  CHECK(sink.events().size() == 20);
  CHECK_THAT(agent.process().output(), Catch::Contains("drained"));
}

TEST_CASE("Agent: HTTPS sink verified with the CA from --logger-ca-cert-dir",
          "[logger][integration]") {
  std::string dir = testsupport::makeTempDir("logger-pki");
  auto pki = logtest::makeTestPki(dir);
  ModelServer model;
  Sink sink(logtest::withTls(pki.serverKey, pki.serverCert));
  SECTION("with the CA file (skip-verify false given as two words, as the webhook does)") {
    Agent agent(model.port(),
                withLogger(sink, {"--logger-ca-cert-dir", dir, "--logger-ca-cert-file", "ca.crt",
                                  "--logger-tls-skip-verify", "false"}));
    REQUIRE(post(agent, "/echo", "tls", "text/plain").status == 200);
    CHECK(sink.waitForEvents(2).size() == 2);
  }
  SECTION("without a CA file the sink is not trusted") {
    Agent agent(model.port(),
                withLogger(sink, {"--logger-ca-cert-dir", dir, "--logger-ca-cert-file",
                                  "missing.crt", "--log-retries", "1"}));
    REQUIRE(post(agent, "/echo", "tls", "text/plain").status == 200);
    std::this_thread::sleep_for(1s);
    CHECK(sink.events().empty());
  }
  SECTION("--logger-tls-skip-verify trusts any certificate") {
    Agent agent(model.port(),
                withLogger(sink, {"--logger-ca-cert-dir", dir, "--logger-ca-cert-file",
                                  "missing.crt", "--logger-tls-skip-verify"}));
    REQUIRE(post(agent, "/echo", "tls", "text/plain").status == 200);
    CHECK(sink.waitForEvents(2).size() == 2);
  }
}

TEST_CASE("Agent: drops held back by the one-line-per-second limit are reported when it allows",
          "[logger][integration]") {
  ModelServer model;
  Sink sink(logtest::failingFirst(100, 400));
  Agent agent(model.port(), withLogger(sink));
  for (int i = 0; i < 3; ++i)
    REQUIRE(post(agent, "/echo", "x", "text/plain").status == 200);
  // All six events are rejected at once; the first report may hold only some of them.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (agent.process().output().find("6 dropped in total") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  CHECK_THAT(agent.process().output(), Catch::Contains("6 dropped in total"));
  CHECK(agent.process().running());
}

TEST_CASE("Agent: events still held when the drain deadline passes are reported as dropped",
          "[logger][integration]") {
  ModelServer model;
  Sink sink(logtest::delayed(60000));
  Agent agent(model.port(), withLogger(sink, {"--drain-timeout=1s"}));
  REQUIRE(post(agent, "/echo", "x", "text/plain").status == 200);
  // A request still in flight at the deadline keeps the logger from draining before it.
  auto slow = std::async(std::launch::async, [&] {
    return testsupport::httpRequest(agent.url("/echo?delay_ms=5000"), {.timeout = 10s});
  });
  std::this_thread::sleep_for(300ms);
  CHECK(agent.terminate(20s) == 0);
  slow.get();
  CHECK_THAT(agent.process().output(), Catch::Contains("shutdown="));
}
