// kserve-router's features beyond upstream (streaming, retries, trace context, metrics, ...),
// each through the real binary in front of the sample model server on loopback.
#include <algorithm>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "tests/support/peers.h"
#include "tests/support/process.h"

using namespace testsupport;
using nlohmann::json;

namespace {

json serviceStep(const std::string& url, json extra = json::object()) {
  extra["serviceUrl"] = url;
  return extra;
}

std::string graphOf(json nodes, json extra = json::object()) {
  extra["nodes"] = std::move(nodes);
  return extra.dump();
}

HttpResponse post(const Router& router, const std::string& body,
                  std::vector<std::string> headers = {"Content-Type: application/json"}) {
  HttpOptions options;
  options.method = "POST";
  options.body = body;
  options.headers = std::move(headers);
  return httpRequest(router.url("/"), options);
}

std::string rawPost(const std::string& body) {
  return "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Streaming pass-through (--stream-responses).

TEST_CASE("router streaming: the last step's SSE answer reaches the client event by event",
          "[router][stream]") {
  ModelServer model;
  // A Sequence whose last step streams three events a second apart: the first must reach the
  // client long before the last is produced.
  std::string graph = graphOf(
      {{"root",
        {{"routerType", "Sequence"},
         {"steps",
          {serviceStep(model.url("/graph/success")),
           serviceStep(model.url("/sse?n=3&interval_ms=1000"), {{"data", "$response"}})}}}}});
  Router router(graph, {"--stream-responses"});
  RawSocket socket(router.port());
  auto start = std::chrono::steady_clock::now();
  REQUIRE(socket.send(rawPost("{}")));
  std::string first =
      socket.readUntil([](const std::string& s) { return s.find("event 0") != std::string::npos; });
  auto firstAt = std::chrono::steady_clock::now() - start;
  INFO(first);
  CHECK_THAT(first, Catch::StartsWith("HTTP/1.1 200"));
  CHECK_THAT(first, Catch::Contains("Content-Type: text/event-stream"));
  CHECK_THAT(first, Catch::Contains("Transfer-Encoding: chunked"));
  CHECK(first.find("event 2") == std::string::npos);
  // The last event is sent 2 s after the first.
  CHECK(firstAt < 1500ms);
  std::string rest = socket.readUntil(
      [](const std::string& s) { return s.find("0\r\n\r\n") != std::string::npos; }, 10s);
  CHECK_THAT(rest, Catch::Contains("data: event 2\n\n"));
  CHECK(countResponses(first + rest) == 1);

  // The connection stays usable for the next request.
  REQUIRE(socket.send(rawPost("{}")));
  std::string again = socket.readUntil(
      [](const std::string& s) { return s.find("0\r\n\r\n") != std::string::npos; }, 10s);
  CHECK_THAT(again, Catch::Contains("data: event 2\n\n"));
}

TEST_CASE("router streaming: off by default, the answer is buffered and its type sniffed",
          "[router][stream]") {
  ModelServer model;
  std::string graph = graphOf(
      {{"root",
        {{"routerType", "Switch"},
         {"steps", {serviceStep(model.url("/sse?n=2&interval_ms=300"), {{"condition", "a"}})}}}}});
  Router router(graph);
  auto start = std::chrono::steady_clock::now();
  HttpResponse response = post(router, R"({"a":1})");
  auto took = std::chrono::steady_clock::now() - start;
  CHECK(response.status == 200);
  CHECK(response.body == "data: event 0\n\ndata: event 1\n\n");
  CHECK(response.header("content-type") == "text/plain; charset=utf-8");
  CHECK(response.header("content-length") == std::to_string(response.body.size()));
  CHECK(took >= 600ms);
}

TEST_CASE("router streaming: a Switch or Splitter step keeps its type and binary-tensor header",
          "[router][stream]") {
  ModelServer model;
  std::string binary =
      model.url("/echo?ctype=application/octet-stream&header=Inference-Header-Content-Length:7");
  std::string graph = graphOf(
      {{"root",
        {{"routerType", "Switch"},
         {"steps",
          {serviceStep(binary, {{"condition", "a"}}),
           {{"nodeName", "split"}, {"condition", "b"}}}}}},
       {"split",
        {{"routerType", "Splitter"}, {"steps", {serviceStep(binary, {{"weight", 100}})}}}}});
  Router router(graph, {"--stream-responses=true"});
  for (const std::string body : {R"({"a":1})", R"({"b":1})"}) {
    HttpResponse response = post(router, body);
    INFO(body);
    CHECK(response.status == 200);
    CHECK(response.body == body);
    CHECK(response.header("content-type") == "application/octet-stream");
    CHECK(response.header("inference-header-content-length") == "7");
    CHECK(response.header("content-length") == std::to_string(body.size()));
  }

  // Without the flag the header is dropped and the type sniffed, as upstream.
  Router plain(graph, {"--stream-responses=false"});
  HttpResponse response = post(plain, R"({"a":1})");
  CHECK(response.status == 200);
  CHECK(response.header("inference-header-content-length").empty());
  CHECK(response.header("content-type") == "application/json");
}

TEST_CASE(
    "router streaming: a large answer streams whole through a slow client, and steps that "
    "are not the answer are buffered",
    "[router][stream]") {
  ModelServer model;
  constexpr size_t kSize = 8 << 20;
  std::string graph =
      graphOf({{"root",
                {{"routerType", "Sequence"},
                 {"steps",
                  {serviceStep(model.url("/echo?ctype=application/json")),
                   serviceStep(model.url("/echo?chunked=1&ctype=application/octet-stream&size=" +
                                         std::to_string(kSize)))}}}}});
  // The answer is larger than the step bound: streamed answers are not held, so not bounded.
  Router router(graph, {"--stream-responses", "--max-step-response-bytes=1048576"});
  RawSocket socket(router.port());
  REQUIRE(socket.send(rawPost("{}")));
  // Read slowly at first so that the router's queue to the client fills and the step pauses.
  std::this_thread::sleep_for(500ms);
  std::string all =
      socket.readUntil([](const std::string& s) { return s.ends_with("\r\n0\r\n\r\n"); }, 20s);
  CHECK_THAT(all, Catch::StartsWith("HTTP/1.1 200"));
  CHECK(countResponses(all) == 1);
  CHECK(all.size() > kSize);

  // An Ensemble's steps are never streamed: an SSE body is no JSON object, and the Ensemble
  // fails as upstream's does.
  std::string ensemble = graphOf(
      {{"root",
        {{"routerType", "Ensemble"},
         {"steps", {serviceStep(model.url("/sse?n=1&interval_ms=10"), {{"name", "s"}})}}}}});
  Router other(ensemble, {"--stream-responses"});
  HttpResponse response = post(other, "{}");
  CHECK(response.status == 500);
  CHECK(response.header("content-type") == "application/json");
}

// ---------------------------------------------------------------------------------------------
// Trace context (--trace-context).

namespace {

// The values of one header a /graph/headers step received, whatever the case of its name.
std::vector<std::string> headerValues(const json& answer, const std::string& lowerName) {
  std::vector<std::string> out;
  for (const auto& [name, values] : answer["headers"].items()) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    if (lower != lowerName) continue;
    for (const auto& value : values)
      out.push_back(value.get<std::string>());
  }
  return out;
}

}  // namespace

TEST_CASE("router trace context: every step call gets the trace id with its own parent id",
          "[router][trace]") {
  ModelServer model;
  // An Ensemble of two steps and a nested Sequence: the answer holds what each step received.
  std::string graph = graphOf(
      {{"root",
        {{"routerType", "Ensemble"},
         {"steps",
          {serviceStep(model.url("/graph/headers"), {{"name", "a"}}),
           serviceStep(model.url("/graph/headers"), {{"name", "b"}}),
           {{"name", "c"}, {"nodeName", "seq"}}}}}},
       {"seq",
        {{"routerType", "Sequence"}, {"steps", {serviceStep(model.url("/graph/headers"))}}}}});
  const std::string traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string parent = "00-" + traceId + "-00f067aa0ba902b7-01";
  // A pattern that picks Traceparent too must not send the client's own parent id.
  Router router(graph, {}, {{"PROPAGATE_HEADERS", "Traceparent,X-Other"}});
  HttpResponse response =
      post(router, "{}",
           {"Content-Type: application/json", "traceparent: " + parent, "tracestate: vendor1=a",
            "tracestate: vendor2=b", "X-Request-Id: req-42"});
  REQUIRE(response.status == 200);
  json answer = json::parse(response.body);
  std::set<std::string> parents;
  for (const char* step : {"a", "b", "c"}) {
    INFO(step);
    auto traceparents = headerValues(answer[step], "traceparent");
    REQUIRE(traceparents.size() == 1);
    const std::string& value = traceparents[0];
    REQUIRE(value.size() == 55);
    CHECK(value.substr(0, 3) == "00-");
    CHECK(value.substr(3, 32) == traceId);
    CHECK(value.substr(52) == "-01");
    parents.insert(value.substr(36, 16));
    CHECK(headerValues(answer[step], "tracestate") ==
          std::vector<std::string>{"vendor1=a,vendor2=b"});
    CHECK(headerValues(answer[step], "x-request-id") == std::vector<std::string>{"req-42"});
  }
  CHECK(parents.size() == 3);
  CHECK_FALSE(parents.contains("00f067aa0ba902b7"));

  // An invalid traceparent is not passed on, nor its tracestate (W3C); the request id is.
  HttpResponse invalid = post(router, "{}",
                              {"traceparent: 00-" + traceId + "-0000000000000000-01",
                               "tracestate: vendor1=a", "X-Request-Id: req-43"});
  json invalidAnswer = json::parse(invalid.body);
  CHECK(headerValues(invalidAnswer["a"], "traceparent").empty());
  CHECK(headerValues(invalidAnswer["a"], "tracestate").empty());
  CHECK(headerValues(invalidAnswer["a"], "x-request-id") == std::vector<std::string>{"req-43"});

  // --trace-context=false: upstream's behaviour, only the patterns decide.
  Router plain(graph, {"--trace-context=false"}, {{"PROPAGATE_HEADERS", "Traceparent"}});
  json plainAnswer = json::parse(
      post(plain, "{}", {"traceparent: " + parent, "tracestate: v=1", "X-Request-Id: r"}).body);
  CHECK(headerValues(plainAnswer["a"], "traceparent") == std::vector<std::string>{parent});
  CHECK(headerValues(plainAnswer["a"], "tracestate").empty());
  CHECK(headerValues(plainAnswer["a"], "x-request-id").empty());
}

// ---------------------------------------------------------------------------------------------
// Retries (retry, defaultRetry).

namespace {

std::vector<json> receivedAt(const ModelServer& model, const std::string& pathPrefix) {
  std::vector<json> out;
  for (const auto& line : model.recordedLines()) {
    json entry = json::parse(line);
    if (entry["path"].get<std::string>().rfind(pathPrefix, 0) == 0) out.push_back(entry);
  }
  return out;
}

}  // namespace

TEST_CASE("router retries: 429 and 5xx answers are retried only with retryOnStatus, bounded",
          "[router][retry]") {
  ModelServer model;
  auto flaky = [&](const std::string& key, int fail, int status) {
    return model.url("/graph/flaky?key=" + key + "&fail=" + std::to_string(fail) +
                     "&status=" + std::to_string(status));
  };
  json retry = {
      {"maxRetries", 3}, {"initialDelayMs", 20}, {"maxDelayMs", 100}, {"retryOnStatus", true}};
  std::string graph =
      graphOf({{"root",
                {{"routerType", "Switch"},
                 {"steps",
                  {serviceStep(flaky("a", 2, 503), {{"condition", "a"}, {"retry", retry}}),
                   serviceStep(flaky("b", 1, 429), {{"condition", "b"}, {"retry", retry}}),
                   serviceStep(flaky("c", 9, 500), {{"condition", "c"}, {"retry", retry}}),
                   serviceStep(flaky("d", 1, 404), {{"condition", "d"}, {"retry", retry}}),
                   serviceStep(flaky("e", 1, 503), {{"condition", "e"}})}}}}},
              {{"defaultRetry", {{"maxRetries", 2}}}});
  Router router(graph, {"--stream-responses"});

  HttpResponse a = post(router, R"({"a":1})");
  CHECK(a.status == 200);
  CHECK(a.body == R"({"a":1})");
  auto seen = receivedAt(model, "/graph/flaky?key=a");
  REQUIRE(seen.size() == 3);
  // Every attempt carries the same body.
  for (const auto& entry : seen)
    CHECK(entry["body_b64"] == seen[0]["body_b64"]);

  CHECK(post(router, R"({"b":1})").status == 200);
  CHECK(receivedAt(model, "/graph/flaky?key=b").size() == 2);

  // The bound: one call and three retries, then the last answer is the step's.
  HttpResponse c = post(router, R"({"c":1})");
  CHECK(c.status == 500);
  CHECK(c.body == R"({"error":"flaky"})");
  CHECK(receivedAt(model, "/graph/flaky?key=c").size() == 4);

  // 404 is not a retryable status.
  CHECK(post(router, R"({"d":1})").status == 404);
  CHECK(receivedAt(model, "/graph/flaky?key=d").size() == 1);

  // defaultRetry without retryOnStatus: an answer, even a 503, is not retried.
  CHECK(post(router, R"({"e":1})").status == 503);
  CHECK(receivedAt(model, "/graph/flaky?key=e").size() == 1);
}

TEST_CASE("router retries: a step that cannot be reached is retried with backoff until it can",
          "[router][retry]") {
  uint16_t port = freePort();
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/graph/echo";
  json retry = {{"maxRetries", 6}, {"initialDelayMs", 200}, {"maxDelayMs", 400}};
  Router router(graphOf(
      {{"root", {{"routerType", "Sequence"}, {"steps", {serviceStep(url, {{"retry", retry}})}}}}}));
  Router without(graphOf({{"root", {{"routerType", "Sequence"}, {"steps", {serviceStep(url)}}}}}));

  // Without a retry, nothing listening is a 502 at once.
  HttpResponse refused = post(without, "{}");
  CHECK(refused.status == 502);

  // With one, the request waits out the service's start (the retries back off: 200 ms, then
  // 400 ms each, jittered down to half).
  std::unique_ptr<ModelServer> model;
  std::thread starter([&] {
    std::this_thread::sleep_for(700ms);
    model = std::make_unique<ModelServer>(std::vector<std::string>{}, port);
  });
  auto start = std::chrono::steady_clock::now();
  HttpResponse answer = post(router, R"({"x":1})");
  auto took = std::chrono::steady_clock::now() - start;
  starter.join();
  CHECK(answer.status == 200);
  CHECK(answer.body == R"({"x":1})");
  CHECK(took >= 700ms);
}

TEST_CASE("router retries: an answer that started streaming is never retried", "[router][retry]") {
  ModelServer model;
  json retry = {{"maxRetries", 3}, {"initialDelayMs", 20}, {"retryOnStatus", true}};
  // /reset answers a head and part of a body, then resets the connection: the service saw the
  // request, so it is not retried (with or without streaming) and the client sees the failure.
  std::string graph =
      graphOf({{"root",
                {{"routerType", "Sequence"},
                 {"steps", {serviceStep(model.url("/reset?k=1"), {{"retry", retry}})}}}}});
  Router router(graph);
  HttpResponse cut = post(router, "{}");
  CHECK(cut.status == 502);
  CHECK(receivedAt(model, "/reset?k=1").size() == 1);

  // A streamed answer 503 on its head is retried (nothing reached the client yet); the retry's
  // answer streams.
  std::string streamed = graphOf(
      {{"root",
        {{"routerType", "Sequence"},
         {"steps",
          {serviceStep(model.url("/graph/flaky?key=s&fail=1&status=503"), {{"retry", retry}})}}}}});
  Router streaming(streamed, {"--stream-responses"});
  HttpResponse ok = post(streaming, R"({"s":1})");
  CHECK(ok.status == 200);
  CHECK(ok.body == R"({"s":1})");
  CHECK(receivedAt(model, "/graph/flaky?key=s").size() == 2);
}

// ---------------------------------------------------------------------------------------------
// Metrics (--metrics-port).

namespace {

json scrape(uint16_t port) {
  Process check({"/usr/bin/python3", sourcePath("tests/support/check_metrics.py"),
                 "http://127.0.0.1:" + std::to_string(port) + "/metrics"});
  int status = check.wait(30s);
  std::string output = check.output();
  INFO(output);
  REQUIRE(status == 0);
  return json::parse(output);
}

// The value of the sample `name` whose labels include `labels`; -1 when there is none.
double sampleValue(const json& page, const std::string& family, const std::string& name,
                   const json& labels) {
  if (!page["families"].contains(family)) return -1;
  for (const auto& sample : page["families"][family]["samples"]) {
    if (sample["name"] != name) continue;
    bool match = true;
    for (const auto& [key, value] : labels.items())
      match = match && sample["labels"].contains(key) && sample["labels"][key] == value;
    if (match) return sample["value"].get<double>();
  }
  return -1;
}

}  // namespace

TEST_CASE("router metrics: requests, nodes, steps, retries, cancellations on --metrics-port",
          "[router][metrics]") {
  ModelServer model;
  json retry = {{"maxRetries", 2}, {"initialDelayMs", 10}, {"retryOnStatus", true}};
  std::string graph = graphOf(
      {{"root",
        {{"routerType", "Switch"},
         {"steps",
          {serviceStep(model.url("/graph/success"), {{"name", "ok"}, {"condition", "ok"}}),
           serviceStep(model.url("/graph/flaky?key=m&fail=1&status=503"),
                       {{"name", "flaky"}, {"condition", "flaky"}, {"retry", retry}}),
           serviceStep(model.url("/graph/success?delay_ms=5000"),
                       {{"name", "slow"}, {"condition", "slow"}}),
           {{"nodeName", "both"}, {"condition", "both"}}}}}},
       {"both",
        {{"routerType", "Ensemble"},
         {"steps",
          {serviceStep(model.url("/graph/error"), {{"name", "fails"}, {"dependency", "Hard"}}),
           serviceStep(model.url("/graph/success?delay_ms=3000"), {{"name", "slow"}})}}}}});
  uint16_t metricsPort = freePort();
  Router router(graph, {"--metrics-port", std::to_string(metricsPort)});
  REQUIRE(waitForPort(metricsPort));

  json empty = scrape(metricsPort);
  CHECK(empty["problems"] == json::array());
  CHECK(sampleValue(empty, "kserve_router_requests_in_flight", "kserve_router_requests_in_flight",
                    json::object()) == 0);

  for (int i = 0; i < 3; ++i)
    CHECK(post(router, R"({"ok":1})").status == 200);
  CHECK(post(router, R"({"flaky":1})").status == 200);
  CHECK(post(router, R"({"nothing":1})").status == 404);
  // The Hard failure answers at once and cancels the slow step.
  CHECK(post(router, R"({"both":1})").status == 404);

  json page = scrape(metricsPort);
  INFO(page.dump(1));
  CHECK(page["problems"] == json::array());
  const json& families = page["families"];
  for (const char* counter :
       {"kserve_router_requests", "kserve_router_node_answers", "kserve_router_step_calls",
        "kserve_router_step_retries", "kserve_router_step_cancellations"}) {
    INFO(counter);
    REQUIRE(families.contains(counter));
    CHECK(families[counter]["type"] == "counter");
  }
  for (const char* histogram :
       {"kserve_router_request_duration_seconds", "kserve_router_step_duration_seconds"}) {
    INFO(histogram);
    REQUIRE(families.contains(histogram));
    CHECK(families[histogram]["type"] == "histogram");
  }
  CHECK(families["kserve_router_step_calls_in_flight"]["type"] == "gauge");

  auto requests = [&](const std::string& code) {
    return sampleValue(page, "kserve_router_requests", "kserve_router_requests_total",
                       {{"code", code}});
  };
  CHECK(requests("200") == 4);
  CHECK(requests("404") == 2);
  CHECK(sampleValue(page, "kserve_router_node_answers", "kserve_router_node_answers_total",
                    {{"node", "root"}, {"code", "404"}}) == 2);
  CHECK(sampleValue(page, "kserve_router_node_answers", "kserve_router_node_answers_total",
                    {{"node", "both"}, {"code", "404"}}) == 1);
  CHECK(sampleValue(page, "kserve_router_step_calls", "kserve_router_step_calls_total",
                    {{"node", "root"}, {"step", "ok"}, {"code", "200"}}) == 3);
  // The flaky step: a 503, then its retry's 200.
  CHECK(sampleValue(page, "kserve_router_step_calls", "kserve_router_step_calls_total",
                    {{"node", "root"}, {"step", "flaky"}, {"code", "503"}}) == 1);
  CHECK(sampleValue(page, "kserve_router_step_calls", "kserve_router_step_calls_total",
                    {{"node", "root"}, {"step", "flaky"}, {"code", "200"}}) == 1);
  CHECK(sampleValue(page, "kserve_router_step_retries", "kserve_router_step_retries_total",
                    {{"node", "root"}, {"step", "flaky"}}) == 1);
  CHECK(sampleValue(page, "kserve_router_step_cancellations",
                    "kserve_router_step_cancellations_total",
                    {{"node", "both"}, {"step", "slow"}}) == 1);
  CHECK(sampleValue(page, "kserve_router_step_calls_in_flight",
                    "kserve_router_step_calls_in_flight",
                    {{"node", "both"}, {"step", "slow"}}) == 0);
  CHECK(sampleValue(page, "kserve_router_step_duration_seconds",
                    "kserve_router_step_duration_seconds_count",
                    {{"node", "root"}, {"step", "ok"}}) == 3);
  CHECK(sampleValue(page, "kserve_router_request_duration_seconds",
                    "kserve_router_request_duration_seconds_count", json::object()) == 6);

  // While a call is out, it is in flight; a client that leaves cancels it and is counted as
  // 499.
  auto gauge = [&](const json& at, const char* step) {
    return sampleValue(at, "kserve_router_step_calls_in_flight",
                       "kserve_router_step_calls_in_flight", {{"node", "root"}, {"step", step}});
  };
  {
    RawSocket client(router.port());
    REQUIRE(client.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"slow\":1}"));
    json during;
    auto deadline = std::chrono::steady_clock::now() + 2s;
    do {
      during = scrape(metricsPort);
    } while (gauge(during, "slow") != 1 && std::chrono::steady_clock::now() < deadline);
    CHECK(gauge(during, "slow") == 1);
    CHECK(sampleValue(during, "kserve_router_requests_in_flight",
                      "kserve_router_requests_in_flight", json::object()) == 1);
  }
  json after;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  do {
    std::this_thread::sleep_for(50ms);
    after = scrape(metricsPort);
  } while (gauge(after, "slow") != 0 && std::chrono::steady_clock::now() < deadline);
  CHECK(gauge(after, "slow") == 0);
  CHECK(sampleValue(after, "kserve_router_step_cancellations",
                    "kserve_router_step_cancellations_total",
                    {{"node", "root"}, {"step", "slow"}}) == 1);
  CHECK(sampleValue(after, "kserve_router_requests", "kserve_router_requests_total",
                    {{"code", "499"}}) == 1);
  CHECK(sampleValue(after, "kserve_router_requests_in_flight", "kserve_router_requests_in_flight",
                    json::object()) == 0);

  // Elsewhere than /metrics: 404; without the flag there is no listener.
  CHECK(httpRequest("http://127.0.0.1:" + std::to_string(metricsPort) + "/").status == 404);
}

// ---------------------------------------------------------------------------------------------
// v2 chaining (v2Chaining on a $response step).

namespace {

using testsupport::base64Decode;

}  // namespace

TEST_CASE("router v2 chaining: an OIP answer goes on as a v2 request, opt-in per step",
          "[router][v2]") {
  ModelServer model;
  const std::string request =
      R"({"id":"r1","inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1.5,2]}]})";
  auto graphWith = [&](bool chaining) {
    return graphOf({{"root",
                     {{"routerType", "Sequence"},
                      {"steps",
                       {serviceStep(model.url("/v2/models/a/infer")),
                        serviceStep(model.url("/v2/models/b/infer"),
                                    {{"data", "$response"}, {"v2Chaining", chaining}})}}}}});
  };
  Router router(graphWith(true));
  HttpResponse chained = post(router, request);
  REQUIRE(chained.status == 200);
  json answer = json::parse(chained.body);
  CHECK(answer["model_name"] == "b");
  CHECK(answer["id"] == "r1");
  REQUIRE(answer["outputs"].size() == 1);
  CHECK(answer["outputs"][0]["name"] == "out_out_x");
  CHECK(answer["outputs"][0]["data"] == json::parse("[1.5,2]"));
  // What the second model received: the first one's outputs as its inputs, text as sent.
  auto seen = receivedAt(model, "/v2/models/b/infer");
  REQUIRE(seen.size() == 1);
  json second = json::parse(base64Decode(seen[0]["body_b64"].get<std::string>()));
  CHECK(second["id"] == "r1");
  CHECK(second["inputs"][0]["name"] == "out_x");
  CHECK(second["inputs"][0]["shape"] == json::parse("[2]"));
  CHECK_FALSE(second.contains("outputs"));

  // Off, the second model gets the answer as it was (upstream #3051): no inputs.
  Router plain(graphWith(false));
  json unchained = json::parse(post(plain, request).body);
  CHECK(unchained["outputs"] == json::array());

  // An answer that is no OIP answer goes on unchanged.
  Router other(graphOf({{"root",
                         {{"routerType", "Sequence"},
                          {"steps",
                           {serviceStep(model.url("/graph/success")),
                            serviceStep(model.url("/graph/echo"),
                                        {{"data", "$response"}, {"v2Chaining", true}})}}}}}));
  CHECK(post(other, "{}").body == R"({"predictions":[{"message":"SUCCESS"}]})");
}

// ---------------------------------------------------------------------------------------------
// Intermediate outputs (intermediateOutputs on a Sequence).

TEST_CASE("router intermediate outputs: a Sequence answers every step's output by name",
          "[router][intermediate]") {
  ModelServer model;
  std::string plainText = model.url("/graph/reply?ctype=text/plain&body=plain%20text");
  std::string graph = graphOf(
      {{"root",
        {{"routerType", "Sequence"},
         {"intermediateOutputs", true},
         {"steps",
          {serviceStep(model.url("/graph/success"), {{"name", "first"}}), serviceStep(plainText),
           serviceStep(model.url("/graph/echo"), {{"name", "last"}})}}}},
       {"gated",
        {{"routerType", "Sequence"},
         {"intermediateOutputs", true},
         {"steps",
          {serviceStep(model.url("/graph/success"), {{"name", "a"}}),
           serviceStep(model.url("/graph/error"), {{"name", "b"}, {"dependency", "Hard"}}),
           serviceStep(model.url("/graph/echo"), {{"name", "never"}})}}}}});
  Router router(graph, {"--stream-responses"});
  HttpResponse response = post(router, R"({"in":1})");
  CHECK(response.status == 200);
  CHECK(response.header("content-type") == "application/json");
  // In step order; a JSON output as sent, another as a JSON string; unnamed steps by index.
  CHECK(response.body ==
        R"({"first":{"predictions":[{"message":"SUCCESS"}]},"1":"plain text","last":{"in":1}})");

  // A Hard failure answers its status with the outputs so far.
  std::string nested =
      graphOf({{"root", {{"routerType", "Sequence"}, {"steps", {{{"nodeName", "gated"}}}}}},
               {"gated", json::parse(graph)["nodes"]["gated"]}});
  Router second(nested);
  HttpResponse hard = post(second, "{}");
  CHECK(hard.status == 404);
  CHECK(hard.body ==
        R"({"a":{"predictions":[{"message":"SUCCESS"}]},"b":{"detail":"Intentional 404 code"}})");
}

// ---------------------------------------------------------------------------------------------
// Per-graph header propagation (propagateHeaders in the graph).

TEST_CASE("router header propagation: the graph's patterns add to PROPAGATE_HEADERS",
          "[router][headers]") {
  ModelServer model;
  std::string graph = graphOf(
      {{"root",
        {{"routerType", "Sequence"}, {"steps", {serviceStep(model.url("/graph/headers"))}}}}},
      {{"propagateHeaders", {"X-Tenant", "^X-B3-.*", "X-Range-{1,2}"}}});
  Router router(graph, {}, {{"PROPAGATE_HEADERS", "X-Env"}});
  HttpResponse response =
      post(router, "{}",
           {"X-Tenant: t1", "x-b3-traceid: abc", "X-Env: e", "X-Other: o", "X-Range--: r"});
  REQUIRE(response.status == 200);
  json seen = json::parse(response.body)["headers"];
  CHECK(seen["X-Tenant"] == json::array({"t1"}));
  CHECK(seen["X-B3-Traceid"] == json::array({"abc"}));
  CHECK(seen["X-Env"] == json::array({"e"}));
  CHECK(seen["X-Range--"] == json::array({"r"}));
  CHECK_FALSE(seen.contains("X-Other"));

  // A pattern RE2 refuses stops the router at start.
  Process bad({builtBinary("kserve-router"), "--port", std::to_string(freePort()), "--graph-json",
               graphOf({{"root",
                         {{"routerType", "Sequence"},
                          {"steps", {serviceStep(model.url("/graph/headers"))}}}}},
                       {{"propagateHeaders", {"X-(Broken"}}})});
  CHECK(bad.wait(10s) == 2);
  CHECK_THAT(bad.output(), Catch::Contains("propagateHeaders[0]") && Catch::Contains("X-(Broken"));
}

TEST_CASE(
    "router streaming: a client that leaves mid-stream cancels the step, serverWrite cuts "
    "a stream that outlasts it",
    "[router][stream][metrics]") {
  ModelServer model;
  std::string graph = graphOf(
      {{"root",
        {{"routerType", "Sequence"},
         {"steps", {serviceStep(model.url("/sse?n=20&interval_ms=300"), {{"name", "llm"}})}}}}});
  uint16_t metricsPort = freePort();
  Router router(graph, {"--stream-responses", "--metrics-port", std::to_string(metricsPort)});
  REQUIRE(waitForPort(metricsPort));
  {
    RawSocket client(router.port());
    REQUIRE(client.send(rawPost("{}")));
    std::string first = client.readUntil(
        [](const std::string& s) { return s.find("event 0") != std::string::npos; });
    CHECK_THAT(first, Catch::Contains("text/event-stream"));
  }
  json page;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  do {
    std::this_thread::sleep_for(50ms);
    page = scrape(metricsPort);
  } while (sampleValue(page, "kserve_router_step_cancellations",
                       "kserve_router_step_cancellations_total",
                       {{"node", "root"}, {"step", "llm"}}) != 1 &&
           std::chrono::steady_clock::now() < deadline);
  CHECK(sampleValue(page, "kserve_router_step_cancellations",
                    "kserve_router_step_cancellations_total",
                    {{"node", "root"}, {"step", "llm"}}) == 1);
  CHECK(sampleValue(page, "kserve_router_requests", "kserve_router_requests_total",
                    {{"code", "499"}}) == 1);
  CHECK(sampleValue(page, "kserve_router_step_calls_in_flight",
                    "kserve_router_step_calls_in_flight",
                    {{"node", "root"}, {"step", "llm"}}) == 0);

  // serverWrite (1 s) fires while the stream (6 s) goes on: the status is out, so the client's
  // connection is cut before the last chunk.
  std::string bounded = graphOf(
      {{"root",
        {{"routerType", "Sequence"},
         {"steps", {serviceStep(model.url("/sse?n=20&interval_ms=300"), {{"name", "llm"}})}}}}},
      {{"routerTimeouts", {{"serverWrite", 1}}}});
  Router cut(bounded, {"--stream-responses"});
  RawSocket client(cut.port());
  REQUIRE(client.send(rawPost("{}")));
  auto start = std::chrono::steady_clock::now();
  std::string all = client.readAll(10s);
  auto took = std::chrono::steady_clock::now() - start;
  CHECK_THAT(all, Catch::StartsWith("HTTP/1.1 200"));
  CHECK_THAT(all, Catch::Contains("event 0"));
  CHECK(all.find("\r\n0\r\n\r\n") == std::string::npos);
  CHECK(took < 4s);
}
