// kserve-router as a user runs it: the real binary with a graph, in front of the sample model
// server's graph models on loopback. Upstream's router unit cases (upstream-router.md §5.1) and
// e2e scenarios (§5.2) as black-box tests, then where this router differs on purpose.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "tests/support/peers.h"
#include "tests/support/pki.h"

using namespace testsupport;
using nlohmann::json;

namespace {

const std::string kIris = R"({"instances":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]})";
const std::string kSuccessBody = R"({"predictions":[{"message":"SUCCESS"}]})";
const std::string kErrorBody = R"({"detail":"Intentional 404 code"})";

HttpResponse post(const Router& router, const std::string& body,
                  std::vector<std::string> headers = {"Content-Type: application/json"},
                  std::string path = "/") {
  HttpOptions options;
  options.method = "POST";
  options.body = body;
  options.headers = std::move(headers);
  return httpRequest(router.url(path), options);
}

// A step on the model server: "http://127.0.0.1:<port>/graph/<model>".
std::string step(const ModelServer& model, const std::string& target) {
  return model.url("/graph/" + target);
}

std::string urlEncode(const std::string& text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// A model answering `body` with `status` (the model server's /graph/reply).
std::string reply(const ModelServer& model, const std::string& body, int status = 200) {
  return step(model, "reply?status=" + std::to_string(status) + "&body=" + urlEncode(body));
}

json serviceStep(const std::string& url, json extra = json::object()) {
  extra["serviceUrl"] = url;
  return extra;
}

std::string graphOf(json nodes, json extra = json::object()) {
  extra["nodes"] = std::move(nodes);
  return extra.dump();
}

// What the model server received, per path prefix, in arrival order.
std::vector<json> received(const ModelServer& model, const std::string& pathPrefix) {
  std::vector<json> out;
  for (const auto& line : model.recordedLines()) {
    json entry = json::parse(line);
    if (entry["path"].get<std::string>().rfind(pathPrefix, 0) == 0) out.push_back(entry);
  }
  return out;
}

using testsupport::base64Decode;

std::string bodyOf(const json& entry) {
  return base64Decode(entry["body_b64"].get<std::string>());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Upstream's router unit cases (cmd/router/main_test.go), black box.

TEST_CASE("router: a Sequence maps predictions to instances and chains $response",
          "[router][upstream]") {
  ModelServer model;
  std::string graph =
      graphOf({{"root",
                {{"routerType", "Sequence"},
                 {"steps",
                  {serviceStep(reply(model, R"({"predictions":"1"})") + "&m=1",
                               {{"name", "model1"}, {"mapPredictionsToInstances", true}}),
                   serviceStep(reply(model, R"({"predictions":"2"})") + "&m=2",
                               {{"name", "model2"}, {"data", "$response"}})}}}}});
  Router router(graph);
  auto r = post(router, R"({"predictions":["test","test2"]})");
  CHECK(r.status == 200);
  CHECK(r.body == R"({"predictions":"2"})");
  CHECK(r.header("content-type") == "application/json");
  auto calls = received(model, "/graph/reply");
  REQUIRE(calls.size() == 2);
  CHECK(json::parse(bodyOf(calls[0])) == json::parse(R"({"instances":["test","test2"]})"));
  CHECK(bodyOf(calls[1]) == R"({"predictions":"1"})");
}

TEST_CASE("router: an Ensemble answers every step's result under its name", "[router][upstream]") {
  ModelServer model;
  std::string graph =
      graphOf({{"root",
                {{"routerType", "Ensemble"},
                 {"steps",
                  {serviceStep(reply(model, R"({"predictions":"1"})"), {{"name", "model1"}}),
                   serviceStep(reply(model, R"({"predictions":"2"})"), {{"name", "model2"}})}}}}});
  Router router(graph);
  auto r = post(router, R"({"instances":["test","test2"]})");
  CHECK(r.status == 200);
  CHECK(r.body == R"({"model1":{"predictions":"1"},"model2":{"predictions":"2"}})");
}

TEST_CASE("router: a Switch picks by condition and a Sequence gates on the previous answer",
          "[router][upstream]") {
  ModelServer model;
  std::string dog = R"({"predictions":[{"label":"dog","score":[0.8,0.2]}]})";
  std::string beagle = R"({"predictions":[{"label":"beagle","score":[0.1,0.9]}]})";
  std::string poodle = R"({"predictions":[{"label":"poodle","score":[0.8,0.2]}]})";
  std::string graph = graphOf(
      {{"root",
        {{"routerType", "Sequence"},
         {"steps",
          {{{"name", "step1"}, {"nodeName", "animal-categorize"}},
           {{"name", "step2"},
            {"nodeName", "breed-categorize"},
            {"condition", R"(predictions.#(label=="dog"))"}}}}}},
       {"animal-categorize",
        {{"routerType", "Switch"},
         {"steps",
          {serviceStep(reply(model, "{}") + "&m=1",
                       {{"name", "model1"}, {"condition", R"(instances.#(modelId=="1"))"}}),
           serviceStep(reply(model, dog) + "&m=2",
                       {{"name", "model2"}, {"condition", R"(instances.#(modelId=="2"))"}})}}}},
       {"breed-categorize",
        {{"routerType", "Ensemble"},
         {"steps",
          {serviceStep(reply(model, beagle) + "&m=3", {{"name", "model3"}}),
           serviceStep(reply(model, poodle) + "&m=4", {{"name", "model4"}})}}}}});
  Router router(graph);
  std::string input = R"({"instances":[{"modelId":"2"}]})";
  auto r = post(router, input);
  CHECK(r.status == 200);
  CHECK(json::parse(r.body) ==
        json::parse(R"({"model3":)" + beagle + R"(,"model4":)" + poodle + "}"));
  std::set<std::string> called;
  for (const auto& entry : received(model, "/graph/reply")) {
    std::string path = entry["path"];
    called.insert(path.substr(path.rfind("&m=") + 3));
    // Every step got the graph's input (no step asked for $response).
    CHECK(bodyOf(entry) == input);
  }
  CHECK(called == std::set<std::string>{"2", "3", "4"});
}

TEST_CASE("router: a Sequence whose condition is not met answers the previous step with 200",
          "[router][upstream]") {
  ModelServer model;
  std::string cat = R"({"predictions":[{"label":"cat","score":[0.8,0.2]}]})";
  uint16_t nobody = freePort();
  std::string graph = graphOf(
      {{"root",
        {{"routerType", "Sequence"},
         {"steps",
          {serviceStep(reply(model, cat, 201), {{"name", "step1"}}),
           serviceStep("http://127.0.0.1:" + std::to_string(nobody) + "/dummy",
                       {{"name", "step2"}, {"condition", R"(predictions.#(label=="dog"))"}})}}}}});
  Router router(graph);
  auto r = post(router, "{}");
  CHECK(r.status == 200);
  CHECK(r.body == cat);
}

TEST_CASE("router: PROPAGATE_HEADERS picks headers by RE2 pattern, a bad pattern is skipped",
          "[router][upstream]") {
  ModelServer model;
  std::string graph = graphOf(
      {{"root", {{"routerType", "Sequence"}, {"steps", {serviceStep(step(model, "headers"))}}}}});
  std::vector<std::string> incoming{
      "Authorization: Bearer Token", "Test-Header-Key: Test-Header-Value",
      "test-header-1: one",          "Test-Header-2: two",
      "Test-Header-3: three",        "Content-Type: text/plain"};
  auto headersSeen = [&](const std::string& patterns) {
    std::map<std::string, std::string> env;
    if (!patterns.empty()) env["PROPAGATE_HEADERS"] = patterns;
    Router router(graph, {}, env);
    auto r = post(router, "{}", incoming);
    REQUIRE(r.status == 200);
    std::map<std::string, std::string> seen;
    json answer = json::parse(r.body);
    for (const auto& [name, values] : answer["headers"].items())
      seen[name] = values[0];
    return std::make_pair(seen, router.process().output());
  };
  auto [none, log1] = headersSeen("");
  CHECK_FALSE(none.contains("Authorization"));
  CHECK_FALSE(none.contains("Test-Header-Key"));
  // The client's Content-Type is not forwarded unless a pattern names it.
  CHECK(none["Content-Type"] == "application/json");

  auto [one, log2] = headersSeen("Test-Header-Key");
  CHECK(one["Test-Header-Key"] == "Test-Header-Value");
  CHECK_FALSE(one.contains("Authorization"));

  auto [two, log3] = headersSeen("Test-Header-Key,Authorization");
  CHECK(two["Test-Header-Key"] == "Test-Header-Value");
  CHECK(two["Authorization"] == "Bearer Token");

  auto [wild, log4] = headersSeen("Test-Header-*,Auth*");
  CHECK(wild["Authorization"] == "Bearer Token");
  // Matched against Go's canonical names, whatever case the client used.
  CHECK(wild["Test-Header-1"] == "one");
  CHECK(wild["Test-Header-2"] == "two");
  CHECK(wild["Test-Header-3"] == "three");

  auto [broken, log5] = headersSeen("Test-Header-[0-9,Auth*");
  CHECK(broken["Authorization"] == "Bearer Token");
  CHECK_FALSE(broken.contains("Test-Header-1"));
  CHECK_THAT(log5, Catch::Contains("Test-Header-[0-9") && Catch::Contains("skipped"));
}

TEST_CASE("router: a URL that is not one stops the router at start, naming node and step",
          "[router][upstream][validation]") {
  Process router({builtBinary("kserve-router"), "--port", std::to_string(freePort()),
                  "--graph-json",
                  graphOf({{"root",
                            {{"routerType", "Sequence"},
                             {"steps",
                              {serviceStep("http://single-1.default.{$your-domain}/switch",
                                           {{"name", "bad"}})}}}}})});
  CHECK(router.wait(10s) == 2);
  CHECK_THAT(router.output(), Catch::Contains("node \"root\"") && Catch::Contains("step 0") &&
                                  Catch::Contains("bad"));
}

TEST_CASE("router: routerTimeouts bound the graph, within them it answers", "[router][upstream]") {
  ModelServer model;
  auto graphWith = [&](int stepMs, std::optional<int> timeout) {
    json extra = json::object();
    if (timeout) {
      extra["routerTimeouts"] = {
          {"serverRead", *timeout}, {"serverWrite", *timeout}, {"serverIdle", *timeout}};
    }
    std::string slow = step(model, "echo?delay_ms=" + std::to_string(stepMs));
    return graphOf({{"root",
                     {{"routerType", "Sequence"},
                      {"steps", {serviceStep(slow), serviceStep(slow, {{"data", "$response"}})}}}}},
                   extra);
  };
  {
    Router router(graphWith(1, std::nullopt));
    CHECK(post(router, "").status == 200);
  }
  {
    // Two 1 s steps cannot fit a 1 s serverWrite: upstream's client reads EOF, ours a 504.
    Router router(graphWith(1000, 1));
    auto r = post(router, "");
    CHECK(r.status == 504);
    CHECK(r.header("content-type") == "application/json");
    CHECK_THAT(r.body, Catch::Contains("write timeout"));
  }
  {
    Router router(graphWith(500, 2));
    CHECK(post(router, "").status == 200);
  }
}

TEST_CASE("router: a Splitter spreads requests by weight and always picks a step",
          "[router][upstream]") {
  ModelServer model;
  std::string graph =
      graphOf({{"root",
                {{"routerType", "Splitter"},
                 {"steps",
                  {serviceStep(reply(model, R"({"to":"a"})"), {{"weight", 20}}),
                   serviceStep(reply(model, R"({"to":"b"})"), {{"weight", 80}})}}}}});
  Router router(graph);
  int a = 0;
  int b = 0;
  for (int i = 0; i < 300; ++i) {
    auto r = post(router, "{}");
    REQUIRE(r.status == 200);
    if (r.body == R"({"to":"a"})") ++a;
    if (r.body == R"({"to":"b"})") ++b;
  }
  CHECK(a + b == 300);
  // 20 % of 300 is 60; a binomial draw stays within 30..95 except once in millions of runs.
  CHECK(a >= 30);
  CHECK(a <= 95);
}

// ---------------------------------------------------------------------------------------------
// Upstream's e2e scenarios (test/e2e/graph), with its success and error models.

TEST_CASE("router e2e: a Sequence of three Hard steps with $request", "[router][e2e]") {
  ModelServer model;
  std::string predict = reply(model, R"({"predictions":[1,1]})");
  std::string graph = graphOf(
      {{"root",
        {{"routerType", "Sequence"},
         {"steps",
          {serviceStep(predict, {{"name", "sklearn"}, {"dependency", "Hard"}}),
           serviceStep(predict,
                       {{"name", "xgboost"}, {"data", "$request"}, {"dependency", "Hard"}}),
           serviceStep(predict,
                       {{"name", "iris"}, {"data", "$request"}, {"dependency", "Hard"}})}}}}});
  Router router(graph);
  auto r = post(router, kIris);
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["predictions"] == json::parse("[1,1]"));
  for (const auto& entry : received(model, "/graph/reply"))
    CHECK(bodyOf(entry) == kIris);
}

TEST_CASE("router e2e: Soft and Hard dependencies in a Sequence (scenarios 1-3)", "[router][e2e]") {
  ModelServer model;
  auto sequence = [&](const std::string& first, const std::string& firstDependency,
                      const std::string& second) {
    json a = serviceStep(step(model, first));
    if (!firstDependency.empty()) a["dependency"] = firstDependency;
    return graphOf({{"root",
                     {{"routerType", "Sequence"},
                      {"steps", {a, serviceStep(step(model, second), {{"data", "$request"}})}}}}});
  };
  {
    Router router(sequence("success", "", "error"));
    auto r = post(router, kIris);
    CHECK(r.status == 404);
    CHECK(r.body == kErrorBody);
  }
  {
    Router router(sequence("error", "", "success"));
    auto r = post(router, kIris);
    CHECK(r.status == 200);
    CHECK(r.body == kSuccessBody);
  }
  {
    Router router(sequence("error", "Hard", "success"));
    auto r = post(router, kIris);
    CHECK(r.status == 404);
    CHECK(r.body == kErrorBody);
  }
}

TEST_CASE("router e2e: a root Switch on the request (scenario 4)", "[router][e2e]") {
  ModelServer model;
  std::string graph = graphOf(
      {{"root",
        {{"routerType", "Switch"},
         {"steps",
          {serviceStep(step(model, "error"), {{"condition", "[@this].#(decision_picker==ERROR)"}}),
           serviceStep(step(model, "success"),
                       {{"condition", "[@this].#(decision_picker==SUCCESS)"}})}}}}});
  Router router(graph);
  auto input = [](const std::string& picker) {
    return R"({"decision_picker":")" + picker + R"(","key1":{"name":"abc"}})";
  };
  auto error = post(router, input("ERROR"));
  CHECK(error.status == 404);
  CHECK(error.body == kErrorBody);
  auto success = post(router, input("SUCCESS"));
  CHECK(success.status == 200);
  CHECK(success.body == kSuccessBody);
  auto none = post(router, input("NO_MATCH"));
  CHECK(none.status == 404);
  CHECK(
      none.body ==
      R"({"error":"Failed to process request","cause":"None of the routes matched with the switch condition"})");
  CHECK(none.header("content-type") == "application/json");
}

TEST_CASE("router e2e: a nested Switch or Splitter, Soft and Hard (scenarios 5, 6, 9, 10)",
          "[router][e2e]") {
  ModelServer model;
  auto graphWith = [&](const std::string& nodeType, bool hard) {
    json inner = serviceStep(step(model, "error"),
                             nodeType == "Switch"
                                 ? json{{"condition", "[@this].#(decision_picker==ERROR)"}}
                                 : json{{"weight", 100}, {"condition", "ignored.by.splitters"}});
    json first = {{"nodeName", "node1"}};
    json second = serviceStep(step(model, "success"), {{"data", "$request"}});
    if (hard) {
      inner["dependency"] = "Hard";
      first["dependency"] = "Hard";
    }
    return graphOf({{"root", {{"routerType", "Sequence"}, {"steps", {first, second}}}},
                    {"node1", {{"routerType", nodeType}, {"steps", {inner}}}}});
  };
  std::string errorInput = R"({"decision_picker":"ERROR"})";
  for (std::string type : {"Switch", "Splitter"}) {
    {
      Router router(graphWith(type, false));
      auto r = post(router, errorInput);
      CHECK(r.status == 200);
      CHECK(r.body == kSuccessBody);
      // The second step got the graph's input, not the first step's answer.
      auto successCalls = received(model, "/graph/success");
      REQUIRE_FALSE(successCalls.empty());
      CHECK(bodyOf(successCalls.back()) == errorInput);
    }
    {
      Router router(graphWith(type, true));
      auto r = post(router, errorInput);
      CHECK(r.status == 404);
      CHECK(r.body == kErrorBody);
    }
  }
}

TEST_CASE("router e2e: Ensembles with Soft and Hard failures (scenarios 7, 8)", "[router][e2e]") {
  ModelServer model;
  {
    Router router(graphOf({{"root",
                            {{"routerType", "Ensemble"},
                             {"steps",
                              {serviceStep(step(model, "success"), {{"name", "rootStep1"}}),
                               serviceStep(step(model, "error"), {{"name", "rootStep2"}})}}}}}));
    auto r = post(router, R"({"decision_picker":"SUCCESS"})");
    CHECK(r.status == 200);
    CHECK(r.body == R"({"rootStep1":)" + kSuccessBody + R"(,"rootStep2":)" + kErrorBody + "}");
  }
  {
    Router router(graphOf(
        {{"root",
          {{"routerType", "Ensemble"},
           {"steps",
            {serviceStep(step(model, "error"), {{"name", "rootStep1"}, {"dependency", "Hard"}}),
             serviceStep(step(model, "success"), {{"name", "rootStep2"}}),
             serviceStep(step(model, "success"), {{"name", "rootStep3"}})}}}}}));
    auto r = post(router, R"({"decision_picker":"SUCCESS"})");
    CHECK(r.status == 404);
    CHECK(r.body == kErrorBody);
  }
}

// ---------------------------------------------------------------------------------------------
// Where this router differs from upstream on purpose.

TEST_CASE("router: graphs are checked at start, every problem names its node and step",
          "[router][validation]") {
  auto start = [](const std::string& graph) {
    Process router({builtBinary("kserve-router"), "--port", std::to_string(freePort()),
                    "--graph-json", graph});
    int status = router.wait(10s);
    return std::make_pair(status, router.output());
  };
  json ok = serviceStep("http://127.0.0.1:9/x");
  struct Case {
    std::string graph;
    std::string says;
  };
  std::vector<Case> cases = {
      {graphOf({{"other", {{"routerType", "Sequence"}, {"steps", {ok}}}}}), "root"},
      {graphOf({{"root", {{"routerType", "Sequence"}, {"steps", {{{"nodeName", "missing"}}}}}}}),
       "missing"},
      {graphOf({{"root", {{"routerType", "Sequence"}, {"steps", {{{"nodeName", "a"}}}}}},
                {"a", {{"routerType", "Sequence"}, {"steps", {{{"nodeName", "root"}}}}}}}),
       "cycle"},
      {graphOf({{"root", {{"routerType", "Sequence"}, {"steps", {{{"name", "none"}}}}}}}), "none"},
      {graphOf({{"root",
                 {{"routerType", "Sequence"},
                  {"steps", {{{"nodeName", "root"}, {"serviceUrl", "http://127.0.0.1:9/"}}}}}}}),
       "step 0"},
      {graphOf({{"root",
                 {{"routerType", "Splitter"},
                  {"steps",
                   {serviceStep("http://127.0.0.1:9/", {{"weight", 110}}),
                    serviceStep("http://127.0.0.1:9/", {{"weight", -10}})}}}}}),
       "weight"},
      {graphOf({{"root",
                 {{"routerType", "Splitter"},
                  {"steps",
                   {serviceStep("http://127.0.0.1:9/", {{"weight", 80}}),
                    serviceStep("http://127.0.0.1:9/", {{"weight", 30}})}}}}}),
       "100"},
      {graphOf({{"root",
                 {{"routerType", "Ensemble"},
                  {"steps",
                   {serviceStep("http://127.0.0.1:9/", {{"name", "twin"}}),
                    serviceStep("http://127.0.0.1:9/", {{"name", "twin"}})}}}}}),
       "twin"},
      {graphOf({{"root", {{"routerType", "Sequence"}, {"steps", {serviceStep("ftp://x/")}}}}}),
       "ftp://x/"},
      {"{not json", "graph"},
  };
  for (const auto& c : cases) {
    INFO(c.graph);
    auto [status, output] = start(c.graph);
    CHECK(status == 2);
    CHECK_THAT(output, Catch::Contains(c.says));
  }
  Process empty({builtBinary("kserve-router"), "--port", std::to_string(freePort())});
  CHECK(empty.wait(10s) == 2);
  CHECK_THAT(empty.output(), Catch::Contains("--graph-json is required"));
}

TEST_CASE("router: Ensemble results keep each step's JSON text as sent, keys sorted", "[router]") {
  ModelServer model;
  std::string exact = R"({"big":12345678901234567890123,"one":1.0,"huge":1e21,"html":"<a&b>"})";
  Router router(graphOf({{"root",
                          {{"routerType", "Ensemble"},
                           {"steps",
                            {serviceStep(reply(model, exact), {{"name", "zeta"}}),
                             serviceStep(reply(model, "null"), {{"name", "alpha"}}),
                             serviceStep(reply(model, R"({"x":1})"))}}}}}));
  auto r = post(router, "{}");
  CHECK(r.status == 200);
  CHECK(r.body == R"({"2":{"x":1},"alpha":null,"zeta":)" + exact + "}");
}

TEST_CASE("router: an Ensemble step that answers no JSON object fails the node", "[router]") {
  ModelServer model;
  Router router(graphOf({{"root",
                          {{"routerType", "Ensemble"},
                           {"steps", {serviceStep(reply(model, "[1,2]"), {{"name", "list"}})}}}}}));
  auto r = post(router, "{}");
  CHECK(r.status == 500);
  CHECK_THAT(r.body, Catch::Contains("cannot unmarshal array") && Catch::Contains("list"));
}

TEST_CASE("router: a nested Switch with no match keeps its 404", "[router]") {
  ModelServer model;
  Router router(graphOf(
      {{"root", {{"routerType", "Sequence"}, {"steps", {{{"nodeName", "pick"}}}}}},
       {"pick",
        {{"routerType", "Switch"},
         {"steps", {serviceStep(step(model, "success"), {{"condition", "never.there"}})}}}}}));
  auto r = post(router, "{}");
  CHECK(r.status == 404);
  CHECK_THAT(r.body, Catch::Contains("None of the routes matched"));
}

TEST_CASE("router: zero-step nodes answer instead of dropping the connection", "[router]") {
  Router sequence(graphOf({{"root", {{"routerType", "Sequence"}, {"steps", json::array()}}}}));
  auto r = post(sequence, "{}");
  CHECK(r.status == 500);
  CHECK_THAT(r.body, Catch::Contains("has no steps"));
  Router ensemble(graphOf({{"root", {{"routerType", "Ensemble"}, {"steps", json::array()}}}}));
  auto e = post(ensemble, "{}");
  CHECK(e.status == 200);
  CHECK(e.body == "{}");
}

TEST_CASE("router: bodies are bounded and steps past serviceClient get 504 naming the step",
          "[router]") {
  ModelServer model;
  SECTION("request body") {
    Router router(
        graphOf({{"root",
                  {{"routerType", "Sequence"}, {"steps", {serviceStep(step(model, "echo"))}}}}}),
        {"--max-request-body-bytes", "1000"});
    auto r = post(router, std::string(5000, 'x'));
    CHECK(r.status == 413);
  }
  SECTION("step answer") {
    Router router(
        graphOf({{"root",
                  {{"routerType", "Sequence"}, {"steps", {serviceStep(step(model, "echo"))}}}}}),
        {"--max-step-response-bytes", "1000"});
    auto r = post(router, std::string(5000, 'x'));
    CHECK(r.status == 502);
    CHECK_THAT(r.body, Catch::Contains("larger than 1000 bytes"));
  }
  SECTION("serviceClient") {
    Router router(graphOf(
        {{"root",
          {{"routerType", "Sequence"},
           {"steps", {serviceStep(step(model, "echo?delay_ms=3000"), {{"name", "slow"}})}}}}},
        {{"routerTimeouts", {{"serviceClient", 1}}}}));
    auto started = std::chrono::steady_clock::now();
    auto r = post(router, "{}");
    CHECK(r.status == 504);
    CHECK_THAT(r.body, Catch::Contains("slow") && Catch::Contains("timed out"));
    CHECK(std::chrono::steady_clock::now() - started < 2500ms);
  }
}

TEST_CASE("router: a client that leaves and an Ensemble that answers early cancel the calls out",
          "[router]") {
  // A step service that never answers and says when the router closes its connection: a
  // listener of the test's own, since no real server reports a caller hanging up.
  uint16_t port = 0;
  int listener = listenOnLoopback(8, port);
  REQUIRE(listener >= 0);
  std::atomic<int> closedConnections{0};
  std::thread silent([&] {
    for (int i = 0; i < 2; ++i) {
      int fd = ::accept(listener, nullptr, nullptr);
      if (fd < 0) return;
      char buffer[4096];
      while (::read(fd, buffer, sizeof buffer) > 0) {
      }
      ++closedConnections;
      ::close(fd);
    }
  });
  ModelServer model;
  std::string hanging = "http://127.0.0.1:" + std::to_string(port) + "/hang";
  {
    Router router(
        graphOf({{"root", {{"routerType", "Sequence"}, {"steps", {serviceStep(hanging)}}}}}));
    RawSocket client(router.port());
    REQUIRE(client.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"));
    std::this_thread::sleep_for(300ms);
    client.close();
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (closedConnections < 1 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    CHECK(closedConnections == 1);
  }
  {
    Router router(
        graphOf({{"root",
                  {{"routerType", "Ensemble"},
                   {"steps",
                    {serviceStep(step(model, "error"), {{"name", "fail"}, {"dependency", "Hard"}}),
                     serviceStep(hanging, {{"name", "hang"}})}}}}}));
    auto r = post(router, "{}");
    CHECK(r.status == 404);
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (closedConnections < 2 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(20ms);
    CHECK(closedConnections == 2);
  }
  ::shutdown(listener, SHUT_RDWR);
  ::close(listener);
  silent.join();
}

TEST_CASE("router: the answer's Content-Type is JSON only for JSON, else what Go sniffs",
          "[router]") {
  ModelServer model;
  Router router(graphOf(
      {{"root", {{"routerType", "Sequence"}, {"steps", {serviceStep(step(model, "echo"))}}}}}));
  auto text = post(router, "plain words", {"Content-Type: text/plain"});
  CHECK(text.status == 200);
  CHECK(text.body == "plain words");
  CHECK(text.header("content-type") == "text/plain; charset=utf-8");
  auto html = post(router, "<html><body>x</body></html>");
  CHECK(html.header("content-type") == "text/html; charset=utf-8");
  auto binary = post(router, std::string("\x01\x02\x03", 3));
  CHECK(binary.header("content-type") == "application/octet-stream");
  auto jsonBody = post(router, R"([1,2])");
  CHECK(jsonBody.header("content-type") == "application/json");
  // Any path and method but /readyz runs the graph.
  auto other = post(router, "{}", {}, "/v2/models/x/infer");
  CHECK(other.status == 200);
}

TEST_CASE("router: /readyz answers 200, then 503 shutting down after SIGTERM", "[router]") {
  ModelServer model;
  Router router(
      graphOf({{"root",
                {{"routerType", "Sequence"}, {"steps", {serviceStep(step(model, "success"))}}}}}),
      {"--drain-period", "2s"});
  auto ready = httpRequest(router.url("/readyz"));
  CHECK(ready.status == 200);
  CHECK(ready.body.empty());
  router.process().signal(SIGTERM);
  std::this_thread::sleep_for(300ms);
  auto draining = httpRequest(router.url("/readyz"));
  CHECK(draining.status == 503);
  CHECK(draining.body == "shutting down\n");
  // Requests are still served during the drain period.
  CHECK(post(router, "{}").status == 200);
  CHECK(router.waitForExit(10s) == 0);
}

TEST_CASE("router: libcurl is loaded only for a graph with an https step", "[router]") {
  // KSR_HTTPS_DIR names a folder without the plugin: a graph of http steps must not need it
  // (it serves, and maps no libcurl), one with an https step or --ca-file refuses to start.
  std::string empty = makeTempDir("router-no-plugin");
  ModelServer model;
  {
    Router router(graphOf({{"root",
                            {{"routerType", "Sequence"},
                             {"steps", {serviceStep(model.url("/graph/success"))}}}}}),
                  {}, {{"KSR_HTTPS_DIR", empty}});
    auto r = post(router, "{}");
    CHECK(r.status == 200);
    CHECK(r.body == kSuccessBody);
    std::ifstream maps("/proc/" + std::to_string(router.process().pid()) + "/maps");
    std::string mapped((std::istreambuf_iterator<char>(maps)), std::istreambuf_iterator<char>());
    CHECK_THAT(mapped, !Catch::Contains("libcurl"));
    CHECK_THAT(mapped, !Catch::Contains("libkserve-router-https"));
  }
  const std::string httpsGraph = graphOf(
      {{"root", {{"routerType", "Sequence"}, {"steps", {serviceStep("https://127.0.0.1:9/x")}}}}});
  const std::string httpGraph = graphOf(
      {{"root", {{"routerType", "Sequence"}, {"steps", {serviceStep("http://127.0.0.1:9/x")}}}}});
  for (const auto& [graph, extra] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {httpsGraph, {}}, {httpGraph, {"--ca-file", "/etc/ssl/certs/ca-certificates.crt"}}}) {
    std::vector<std::string> argv{builtBinary("kserve-router"), "--port",
                                  std::to_string(freePort()), "--graph-json", graph};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Process router(argv, {{"KSR_HTTPS_DIR", empty}});
    CHECK(router.wait(10s) == 2);
    CHECK_THAT(router.output(),
               Catch::Contains("kserve-router: https steps need the https plugin: cannot load " +
                               empty + "/libkserve-router-https.so"));
  }
}

TEST_CASE("router: https steps with the trust given, and as http inside an Istio mesh",
          "[router]") {
  std::string dir = makeTempDir("router-pki");
  TestPki pki = makeTestPki(dir);
  uint16_t tlsPort = freePort();
  ModelServer tlsModel({"--tls-cert", pki.serverCert, "--tls-key", pki.serverKey}, tlsPort);
  std::string graph = graphOf(
      {{"root",
        {{"routerType", "Sequence"},
         {"steps",
          {serviceStep("https://127.0.0.1:" + std::to_string(tlsPort) + "/graph/success")}}}}});
  uint16_t noMesh = freePort();
  std::string probeArg = "--istio-probe-url=http://127.0.0.1:" + std::to_string(noMesh) + "/";
  {
    Router router(graph, {"--ca-file", pki.caCert, probeArg});
    auto r = post(router, "{}");
    CHECK(r.status == 200);
    CHECK(r.body == kSuccessBody);
  }
  {
    // Without the CA the system store refuses the model's certificate.
    Router router(graph, {probeArg});
    auto r = post(router, "{}");
    CHECK(r.status == 502);
  }
  {
    // In a mesh (the sidecar's admin port answers 200) https steps go as http.
    ModelServer plain;
    ModelServer sidecar;
    std::string meshGraph =
        graphOf({{"root",
                  {{"routerType", "Sequence"},
                   {"steps",
                    {serviceStep("https://127.0.0.1:" + std::to_string(plain.port()) +
                                 "/graph/success")}}}}});
    Router router(meshGraph, {"--istio-probe-url", sidecar.url("/")});
    auto r = post(router, "{}");
    CHECK(r.status == 200);
    CHECK(r.body == kSuccessBody);
    CHECK(received(plain, "/graph/success").size() == 1);
  }
}
