// The InferenceGraph model: --graph-json decoded as Go's encoding/json decodes it into KServe's
// v1alpha1 types (the decoding answers were checked against Go), then each start-up check.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>

#include "router/graph.h"

using router::Dependency;
using router::Graph;
using router::GraphResult;
using router::RouterType;

namespace {

// A valid graph around one root node with the given steps (JSON array text).
std::string rootWith(std::string_view routerType, std::string_view steps) {
  return R"({"nodes":{"root":{"routerType":")" + std::string(routerType) + R"(","steps":)" +
         std::string(steps) + "}}}";
}

const router::Step& firstStep(const GraphResult& r) {
  return r.graph.nodes.at("root").steps.at(0);
}

}  // namespace

TEST_CASE("the seed example: stepName is not a field, the step is unnamed", "[graph]") {
  GraphResult r = router::parseGraph(
      R"({"nodes":{"root":{"routerType":"Sequence","steps":[{"stepName":"model1","serviceUrl":"http://localhost:8080/v1/models/model1:predict"}]}}})");
  REQUIRE(r.ok());
  const router::Step& s = firstStep(r);
  CHECK(s.name.empty());
  CHECK(s.serviceUrl == "http://localhost:8080/v1/models/model1:predict");
  CHECK(r.graph.nodes.at("root").type == RouterType::Sequence);
  CHECK(s.dependencyType == Dependency::Soft);
  CHECK_FALSE(r.graph.routerTimeouts);
  CHECK(r.graph.warnings.empty());
}

TEST_CASE("the controller's JSON decodes with every field", "[graph]") {
  // As the controller marshals a resolved spec: serviceName steps carry serviceUrl too, and the
  // pod fields come along.
  GraphResult r = router::parseGraph(R"json({
    "nodes": {
      "root": {"routerType": "Sequence", "steps": [
        {"name": "step1", "nodeName": "animal-categorize", "dependency": "Hard"},
        {"name": "step2", "serviceName": "breed", "serviceUrl": "http://breed.default.svc.cluster.local/v1/models/breed:predict",
         "data": "$response", "condition": "predictions.#(label==\"dog\")", "mapPredictionsToInstances": true}]},
      "animal-categorize": {"routerType": "Switch", "steps": [
        {"serviceUrl": "https://m1.example.com/v1/models/m1:predict", "condition": "instances.#(modelId==\"1\")"}]}
    },
    "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
    "affinity": {"nodeAffinity": {}}, "minReplicas": 1, "maxReplicas": 3, "timeout": 30,
    "routerTimeouts": {"serverRead": 10, "serverWrite": 20, "serverIdle": 30, "serviceClient": 5}
  })json");
  REQUIRE(r.ok());
  const auto& root = r.graph.nodes.at("root");
  REQUIRE(root.steps.size() == 2);
  CHECK(root.steps[0].nodeName == "animal-categorize");
  CHECK(root.steps[0].dependencyType == Dependency::Hard);
  CHECK(root.steps[1].data == "$response");
  CHECK(root.steps[1].condition == R"(predictions.#(label=="dog"))");
  CHECK(root.steps[1].mapPredictionsToInstances);
  CHECK(r.graph.nodes.at("animal-categorize").type == RouterType::Switch);
  REQUIRE(r.graph.routerTimeouts);
  CHECK(r.graph.routerTimeouts->serverRead == 10);
  CHECK(r.graph.routerTimeouts->serverWrite == 20);
  CHECK(r.graph.routerTimeouts->serverIdle == 30);
  CHECK(r.graph.routerTimeouts->serviceClient == 5);
}

TEST_CASE("keys match field names exactly, else without regard to case", "[graph][decode]") {
  GraphResult r = router::decodeGraph(
      R"({"NODES":{"root":{"ROUTERTYPE":"Splitter","Steps":[{"NAME":"a","ServiceURL":"http://a","Weight":100,"DEPENDENCY":"Hard","Condition":"x","Data":"d","MAPPREDICTIONSTOINSTANCES":true,"NodeNAME":"n","SERVICENAME":"s"}]}},"RouterTimeouts":{"SERVERREAD":7}})");
  REQUIRE(r.ok());
  const router::Step& s = firstStep(r);
  CHECK(r.graph.nodes.at("root").routerType == "Splitter");
  CHECK(s.name == "a");
  CHECK(s.serviceUrl == "http://a");
  CHECK(s.weight == 100);
  CHECK(s.dependency == "Hard");
  CHECK(s.condition == "x");
  CHECK(s.data == "d");
  CHECK(s.mapPredictionsToInstances);
  CHECK(s.nodeName == "n");
  CHECK(s.serviceName == "s");
  CHECK(r.graph.routerTimeouts->serverRead == 7);
  // Go folds U+017F (ſ) onto s.
  r = router::decodeGraph(
      "{\"nodes\":{\"root\":{\"routerType\":\"Switch\",\"\xc5\xbfteps\":[{}]}}}");
  REQUIRE(r.ok());
  CHECK(r.graph.nodes.at("root").steps.size() == 1);
  // Node names are map keys: matched exactly.
  r = router::parseGraph(
      R"({"nodes":{"Root":{"routerType":"Sequence","steps":[{"serviceUrl":"http://a"}]}}})");
  CHECK(r.error == "graph: no node named \"root\"");
}

TEST_CASE("unknown keys are ignored at every level", "[graph][decode]") {
  GraphResult r = router::parseGraph(
      R"({"x":[1,{"y":null}],"nodes":{"root":{"extra":{"deep":[[[]]]},"routerType":"Ensemble","steps":[{"serviceUrl":"http://a","retry":{"max":3}}]}},"resources":{},"tolerations":[],"scaleMetric":"cpu"})");
  REQUIRE(r.ok());
  CHECK(firstStep(r).serviceUrl == "http://a");
}

TEST_CASE("a repeated key decodes again into the same field", "[graph][decode]") {
  // Scalars: the last wins.
  GraphResult r = router::decodeGraph(
      R"({"nodes":{"root":{"routerType":"Switch","routerType":"Sequence","steps":[{"name":"a","name":"b","weight":1,"weight":2}]}}})");
  REQUIRE(r.ok());
  CHECK(r.graph.nodes.at("root").routerType == "Sequence");
  CHECK(firstStep(r).name == "b");
  CHECK(firstStep(r).weight == 2);
  // routerTimeouts is a pointer to a struct: a second object is merged into the first.
  r = router::decodeGraph(
      R"({"routerTimeouts":{"serverRead":1},"routerTimeouts":{"serverWrite":2}})");
  REQUIRE(r.ok());
  CHECK(r.graph.routerTimeouts->serverRead == 1);
  CHECK(r.graph.routerTimeouts->serverWrite == 2);
  // A repeated steps array is decoded over the steps already there, then cut to its length.
  r = router::decodeGraph(
      R"({"nodes":{"root":{"steps":[{"name":"a","serviceUrl":"http://a"},{"name":"b"}],"steps":[{"nodeName":"n"}]}}})");
  REQUIRE(r.ok());
  const auto& steps = r.graph.nodes.at("root").steps;
  REQUIRE(steps.size() == 1);
  CHECK(steps[0].name == "a");
  CHECK(steps[0].serviceUrl == "http://a");
  CHECK(steps[0].nodeName == "n");
  // A repeated node name replaces the node; a repeated nodes object adds to the map.
  r = router::decodeGraph(
      R"({"nodes":{"root":{"routerType":"Switch","steps":[{}]},"root":{"routerType":"Splitter"}},"nodes":{"other":{}}})");
  REQUIRE(r.ok());
  CHECK(r.graph.nodes.at("root").routerType == "Splitter");
  CHECK(r.graph.nodes.at("root").steps.empty());
  CHECK(r.graph.nodes.count("other") == 1);
}

TEST_CASE("null keeps strings and booleans and clears the rest", "[graph][decode]") {
  GraphResult r = router::decodeGraph(
      R"({"nodes":{"root":{"routerType":"Switch","routerType":null,"steps":[{"name":"a","name":null,"mapPredictionsToInstances":true,"mapPredictionsToInstances":null,"weight":5,"weight":null}]}},"routerTimeouts":{"serverRead":1,"serverRead":null}})");
  REQUIRE(r.ok());
  CHECK(r.graph.nodes.at("root").routerType == "Switch");
  CHECK(firstStep(r).name == "a");
  CHECK(firstStep(r).mapPredictionsToInstances);
  CHECK_FALSE(firstStep(r).weight);
  CHECK_FALSE(r.graph.routerTimeouts->serverRead);
  r = router::decodeGraph(
      R"({"nodes":{"root":{"steps":[{}]}},"nodes":null,"routerTimeouts":{},"routerTimeouts":null})");
  REQUIRE(r.ok());
  CHECK(r.graph.nodes.empty());
  CHECK_FALSE(r.graph.routerTimeouts);
  r = router::decodeGraph(R"({"nodes":{"root":{"steps":[{"name":"a"}],"steps":null}}})");
  REQUIRE(r.ok());
  CHECK(r.graph.nodes.at("root").steps.empty());
  // A null step inside a repeated array leaves the step already there as it was.
  r = router::decodeGraph(R"({"nodes":{"root":{"steps":[{"name":"a"}],"steps":[null]}}})");
  REQUIRE(r.ok());
  CHECK(firstStep(r).name == "a");
  // A null node is an empty node, and a null document an empty spec.
  CHECK(router::decodeGraph(R"({"nodes":{"root":null}})").graph.nodes.count("root") == 1);
  CHECK(router::decodeGraph("null").ok());
}

TEST_CASE("values of the wrong type are errors naming the field", "[graph][decode]") {
  auto error = [](std::string_view json) { return router::decodeGraph(json).error; };
  CHECK(error(R"({"nodes":{"root":{"steps":[{"weight":"10"}]}}})") ==
        R"(graph: nodes["root"].steps[0].weight: want an integer (int64), got string "10")");
  CHECK(error(R"({"nodes":{"root":{"steps":[{},{"weight":1.5}]}}})") ==
        R"(graph: nodes["root"].steps[1].weight: want an integer (int64), got number 1.5)");
  CHECK(error(R"({"nodes":{"root":{"steps":[{"weight":1e2}]}}})") ==
        R"(graph: nodes["root"].steps[0].weight: want an integer (int64), got number 1e2)");
  CHECK(
      error(R"({"nodes":{"root":{"steps":[{"weight":9223372036854775808}]}}})") ==
      R"(graph: nodes["root"].steps[0].weight: want an integer (int64), got number 9223372036854775808)");
  CHECK(router::decodeGraph(R"({"nodes":{"root":{"steps":[{"weight":-9223372036854775808}]}}})")
            .graph.nodes.at("root")
            .steps[0]
            .weight == INT64_MIN);
  CHECK(error(R"({"nodes":{"root":{"routerType":1}}})") ==
        R"(graph: nodes["root"].routerType: want a string, got number 1)");
  CHECK(
      error(R"({"nodes":{"root":{"steps":[{"mapPredictionsToInstances":"true"}]}}})") ==
      R"(graph: nodes["root"].steps[0].mapPredictionsToInstances: want a boolean, got string "true")");
  CHECK(error(R"({"nodes":{"root":{"steps":{}}}})") ==
        R"(graph: nodes["root"].steps: want an array, got object {})");
  CHECK(error(R"({"nodes":[]})") == "graph: nodes: want an object, got array []");
  CHECK(error(R"({"routerTimeouts":{"serviceClient":true}})") ==
        "graph: routerTimeouts.serviceClient: want an integer (int64), got bool true");
  CHECK(error("[]") == "graph: the spec: want an object, got array []");
  // A value written over several lines is shown on one (the fuzzer found the line break).
  CHECK(error("{\"nodes\":{\"a\":[{\"nodeName\":\"a\"\n\t  }\r\n]}}") ==
        R"(graph: nodes["a"]: want an object, got array [{"nodeName":"a" } ])");
  CHECK(error("{\"nodes\":[\n" + std::string(60, ' ') + "1]}") ==
        "graph: nodes: want an object, got array [ 1]");
  CHECK(error("{\"nodes\":[" + std::string(60, ' ') + "1]}") ==
        "graph: nodes: want an object, got array [" + std::string(39, ' ') + "...");
  // Only the first is reported, as Go does; a syntax error anywhere comes first.
  CHECK(error(R"({"nodes":{"root":{"routerType":1,"steps":[{"weight":"x"}]}}})") ==
        R"(graph: nodes["root"].routerType: want a string, got number 1)");
  CHECK(error(R"({"nodes":{"root":{"routerType":1}},})").starts_with("graph: not valid JSON:"));
}

TEST_CASE("text that is not JSON is refused with its position", "[graph][decode]") {
  auto error = [](std::string_view json) { return router::decodeGraph(json).error; };
  CHECK(error("") == "graph: not valid JSON: unexpected end of input");
  CHECK(error("{\"nodes\":{}") == "graph: not valid JSON: unexpected end of input");
  CHECK(error("{\"nodes\":{},}") ==
        "graph: not valid JSON: invalid character '}' looking for beginning of object key string "
        "at byte 12");
  CHECK(error("{\"a\":01}") ==
        "graph: not valid JSON: invalid character '1' after object key:value pair at byte 6");
  CHECK(error("{\"a\":\"\x01\"}") ==
        "graph: not valid JSON: invalid character \"\\u0001\" in string literal at byte 6");
  CHECK(error("{} x") ==
        "graph: not valid JSON: invalid character 'x' after top-level value at byte 3");
  std::string deep(10001, '[');
  CHECK(error(deep) == "graph: not valid JSON: nested deeper than 10000");
}

TEST_CASE("strings decode as Go decodes them", "[graph][decode]") {
  GraphResult r = router::decodeGraph(
      "{\"nodes\":{\"r\\u00e9\":{\"steps\":[{\"condition\":\"a\\u0022b\\ud83d\\ude00\\ud800x\\n\","
      "\"data\":\"\xff\xc3\xa9\"}]}}}");
  REQUIRE(r.ok());
  const router::Step& s = r.graph.nodes.at("r\xc3\xa9").steps.at(0);
  CHECK(s.condition == "a\"b\xf0\x9f\x98\x80\xef\xbf\xbdx\n");
  CHECK(s.data == "\xef\xbf\xbd\xc3\xa9");
}

TEST_CASE("a graph needs a root node", "[graph][check]") {
  GraphResult r = router::parseGraph(R"({"nodes":{}})");
  CHECK(r.error == "graph: no node named \"root\"");
  CHECK(r.graph.nodes.empty());
  CHECK(router::parseGraph("{}").error == "graph: no node named \"root\"");
}

TEST_CASE("routerType must be one of the four, exactly", "[graph][check]") {
  for (std::string_view type : {"Sequence", "Splitter", "Ensemble", "Switch"}) {
    std::string steps = type == "Splitter" ? R"([{"serviceUrl":"http://a","weight":100}])"
                                           : R"([{"serviceUrl":"http://a"}])";
    CHECK(router::parseGraph(rootWith(type, steps)).ok());
  }
  CHECK(
      router::parseGraph(rootWith("sequence", R"([{"serviceUrl":"http://a"}])")).error ==
      R"(graph: node "root": routerType "sequence" is not Sequence, Splitter, Ensemble or Switch)");
  CHECK(router::parseGraph(R"({"nodes":{"root":{"steps":[{"serviceUrl":"http://a"}]}}})").error ==
        R"(graph: node "root": routerType "" is not Sequence, Splitter, Ensemble or Switch)");
}

TEST_CASE("each step has exactly one target the router can call", "[graph][check]") {
  CHECK(router::parseGraph(rootWith("Sequence", R"([{"name":"a"}])")).error ==
        R"(graph: node "root" step 0 ("a"): has no target (nodeName, serviceName or serviceUrl))");
  CHECK(
      router::parseGraph(
          rootWith("Sequence", R"([{"serviceUrl":"http://a"},{"data":"$response"}])"))
          .error ==
      "graph: node \"root\" step 1 (unnamed): has no target (nodeName, serviceName or serviceUrl)");
  CHECK(
      router::parseGraph(
          R"({"nodes":{"root":{"routerType":"Sequence","steps":[{"name":"x","nodeName":"n","serviceUrl":"http://a"}]},"n":{"routerType":"Sequence","steps":[{"serviceUrl":"http://b"}]}}})")
          .error ==
      R"(graph: node "root" step 0 ("x"): has several targets (nodeName with serviceName or serviceUrl))");
  CHECK(
      router::parseGraph(rootWith("Sequence", R"([{"name":"m","serviceName":"isvc"}])")).error ==
      R"(graph: node "root" step 0 ("m"): serviceName "isvc" has no serviceUrl, which the router calls (the controller fills it in))");
  // A serviceName step as the controller resolves it, with its serviceUrl.
  CHECK(router::parseGraph(
            rootWith("Sequence", R"([{"serviceName":"isvc","serviceUrl":"http://isvc"}])"))
            .ok());
}

TEST_CASE("nodeName must name a node of the graph", "[graph][check]") {
  CHECK(router::parseGraph(rootWith("Sequence", R"([{"name":"s","nodeName":"nowhere"}])")).error ==
        R"(graph: node "root" step 0 ("s"): nodeName "nowhere" names no node)");
}

TEST_CASE("cycles through nodeName are refused, each named", "[graph][check]") {
  CHECK(router::parseGraph(rootWith("Sequence", R"([{"name":"self","nodeName":"root"}])")).error ==
        R"(graph: node "root" step 0 ("self"): nodeName "root" closes the cycle "root" -> "root")");
  GraphResult r = router::parseGraph(R"({"nodes":{
      "root":{"routerType":"Sequence","steps":[{"nodeName":"a"}]},
      "a":{"routerType":"Switch","steps":[{"serviceUrl":"http://x","condition":"c"},{"name":"back","nodeName":"b"}]},
      "b":{"routerType":"Ensemble","steps":[{"nodeName":"root"}]}}})");
  CHECK(
      r.error ==
      R"(graph: node "b" step 0 (unnamed): nodeName "root" closes the cycle "root" -> "a" -> "b" -> "root")");
  // Two nodes may call the same node: that is no cycle.
  CHECK(router::parseGraph(R"({"nodes":{
      "root":{"routerType":"Ensemble","steps":[{"name":"1","nodeName":"a"},{"name":"2","nodeName":"a"}]},
      "a":{"routerType":"Sequence","steps":[{"serviceUrl":"http://x"}]}}})")
            .ok());
}

TEST_CASE("serviceUrl must be an absolute http or https URL with a host", "[graph][check]") {
  for (std::string_view url :
       {"http://localhost:8080/v1/models/model1:predict", "HTTPS://m.example.com",
        "http://[::1]:80/x", "http://user:pw@host/", "http://host:/p?q=1#f", "http://10.0.0.1",
        "https://b\xc3\xbc.de", "http://a%C3%BCb/", "http://h/a b", "http://h?x", "http://%25/"}) {
    INFO(url);
    CHECK(router::parseGraph(
              rootWith("Sequence", R"([{"serviceUrl":")" + std::string(url) + R"("}])"))
              .ok());
  }
  auto problem = [](std::string_view url) {
    return router::parseGraph(
               rootWith("Sequence", R"([{"name":"m","serviceUrl":")" + std::string(url) + R"("}])"))
        .error;
  };
  CHECK(problem("ftp://x") ==
        R"(graph: node "root" step 0 ("m"): serviceUrl "ftp://x" is not an http(s) URL)");
  CHECK(
      problem("/v1/models/m:predict") ==
      R"(graph: node "root" step 0 ("m"): serviceUrl "/v1/models/m:predict" is not an http(s) URL)");
  CHECK(problem("http:/path") ==
        R"(graph: node "root" step 0 ("m"): serviceUrl "http:/path" has no host)");
  CHECK(problem("http:///path") ==
        R"(graph: node "root" step 0 ("m"): serviceUrl "http:///path" has no host)");
  CHECK(problem("http://host:80x/") ==
        R"(graph: node "root" step 0 ("m"): serviceUrl "http://host:80x/" has an invalid port)");
  // KServe's own malformed-URL test case.
  CHECK(
      problem("http://single-1.default.{$your-domain}/switch") ==
      R"(graph: node "root" step 0 ("m"): serviceUrl "http://single-1.default.{$your-domain}/switch" has an invalid character "{" in its host)");
  CHECK(
      problem("http://a%20b/") ==
      R"(graph: node "root" step 0 ("m"): serviceUrl "http://a%20b/" has an invalid character "%" in its host)");
  CHECK(
      problem("http://[a b]/") ==
      R"(graph: node "root" step 0 ("m"): serviceUrl "http://[a b]/" has an invalid character " " in its host)");
  CHECK(
      problem("http://a b@h/") ==
      R"(graph: node "root" step 0 ("m"): serviceUrl "http://a b@h/" has an invalid user name or password)");
  CHECK(
      problem("http://a\\u0007b/") ==
      R"(graph: node "root" step 0 ("m"): serviceUrl "http://a\u0007b/" has a control character)");
}

TEST_CASE("dependency is empty, Soft or Hard", "[graph][check]") {
  GraphResult r = router::parseGraph(rootWith(
      "Sequence",
      R"([{"serviceUrl":"http://a","dependency":"Hard"},{"serviceUrl":"http://b","dependency":"Soft"},{"serviceUrl":"http://c"}])"));
  REQUIRE(r.ok());
  const auto& steps = r.graph.nodes.at("root").steps;
  CHECK(steps[0].dependencyType == Dependency::Hard);
  CHECK(steps[1].dependencyType == Dependency::Soft);
  CHECK(steps[2].dependencyType == Dependency::Soft);
  CHECK(router::parseGraph(
            rootWith("Sequence", R"([{"name":"s","serviceUrl":"http://a","dependency":"hard"}])"))
            .error == R"(graph: node "root" step 0 ("s"): dependency "hard" is not Soft or Hard)");
}

TEST_CASE("step names are unique within a node, empty names aside", "[graph][check]") {
  CHECK(router::parseGraph(
            rootWith("Ensemble", R"([{"serviceUrl":"http://a"},{"serviceUrl":"http://b"}])"))
            .ok());
  CHECK(router::parseGraph(
            rootWith(
                "Ensemble",
                R"([{"name":"m","serviceUrl":"http://a"},{"name":"m","serviceUrl":"http://b"}])"))
            .error == R"(graph: node "root" step 1 ("m"): another step of the node has this name)");
}

TEST_CASE("Splitter weights: each present, none negative, summing to 100", "[graph][check]") {
  CHECK(router::parseGraph(
            rootWith(
                "Splitter",
                R"([{"serviceUrl":"http://a","weight":20},{"serviceUrl":"http://b","weight":80}])"))
            .ok());
  CHECK(router::parseGraph(
            rootWith(
                "Splitter",
                R"([{"serviceUrl":"http://a","weight":0},{"serviceUrl":"http://b","weight":100}])"))
            .ok());
  CHECK(router::parseGraph(
            rootWith(
                "Splitter",
                R"([{"serviceUrl":"http://a","weight":20},{"name":"b","serviceUrl":"http://b"}])"))
            .error == R"(graph: node "root" step 1 ("b"): a Splitter step needs a weight)");
  CHECK(
      router::parseGraph(
          rootWith(
              "Splitter",
              R"([{"name":"a","serviceUrl":"http://a","weight":110},{"name":"b","serviceUrl":"http://b","weight":-10}])"))
          .error == R"(graph: node "root" step 1 ("b"): weight -10 is negative)");
  CHECK(router::parseGraph(
            rootWith(
                "Splitter",
                R"([{"serviceUrl":"http://a","weight":80},{"serviceUrl":"http://b","weight":30}])"))
            .error == R"(graph: node "root": Splitter weights sum to more than 100, not 100)");
  CHECK(router::parseGraph(
            rootWith(
                "Splitter",
                R"([{"serviceUrl":"http://a","weight":20},{"serviceUrl":"http://b","weight":70}])"))
            .error == R"(graph: node "root": Splitter weights sum to 90, not 100)");
  CHECK(
      router::parseGraph(
          rootWith(
              "Splitter",
              R"([{"serviceUrl":"http://a","weight":9223372036854775807},{"serviceUrl":"http://b","weight":9223372036854775807}])"))
          .error == R"(graph: node "root": Splitter weights sum to more than 100, not 100)");
}

TEST_CASE("every problem is reported, one line each", "[graph][check]") {
  GraphResult r = router::parseGraph(R"({"nodes":{
      "a":{"routerType":"Bad","steps":[{"name":"x"}]},
      "b":{"routerType":"Splitter","steps":[{"name":"y","serviceUrl":"ftp://y","weight":5}]}}})");
  CHECK(r.error ==
        "graph: no node named \"root\"\n"
        "graph: node \"a\": routerType \"Bad\" is not Sequence, Splitter, Ensemble or Switch\n"
        "graph: node \"a\" step 0 (\"x\"): has no target (nodeName, serviceName or serviceUrl)\n"
        "graph: node \"b\" step 0 (\"y\"): serviceUrl \"ftp://y\" is not an http(s) URL\n"
        "graph: node \"b\": Splitter weights sum to 5, not 100");
}

TEST_CASE("conditions are not checked: gjson accepts any path", "[graph][check]") {
  CHECK(
      router::parseGraph(
          rootWith(
              "Switch",
              R"([{"serviceUrl":"http://a","condition":"{ .predictions.class == \"dog\" }"},{"serviceUrl":"http://b","condition":"#((("}])"))
          .ok());
}

TEST_CASE("nodes without steps and ignored fields are warnings", "[graph][check]") {
  GraphResult r = router::parseGraph(R"({"nodes":{
      "root":{"routerType":"Sequence","steps":[{"name":"first","serviceUrl":"http://a","condition":"x","weight":3},{"nodeName":"empty"}]},
      "empty":{"routerType":"Ensemble"},
      "lonely":{"routerType":"Splitter","steps":[{"serviceUrl":"http://b","weight":100,"condition":"y"}]}}})");
  REQUIRE(r.ok());
  CHECK(
      r.graph.warnings ==
      std::vector<std::string>{
          R"(graph: node "empty" has no steps; requests reaching it fail)",
          R"(graph: node "lonely" is not reachable from "root")",
          R"(graph: node "lonely" step 0 (unnamed): the condition is ignored by a Splitter node)",
          R"(graph: node "root" step 0 ("first"): a condition on the first step of a Sequence has no previous response to test (upstream answers every request 500 "invalid response"))",
          R"(graph: node "root" step 0 ("first"): the weight is ignored by a Sequence node)",
      });
}

TEST_CASE("retry and defaultRetry decode, get their defaults and are checked", "[graph][retry]") {
  GraphResult r = router::parseGraph(
      R"({"defaultRetry":{"maxRetries":2},"nodes":{"root":{"routerType":"Sequence","steps":[)"
      R"({"serviceUrl":"http://a/","retry":{"maxRetries":3,"initialDelayMs":50,)"
      R"("maxDelayMs":400,"retryOnStatus":true}},{"serviceUrl":"http://b/"}]}}})");
  REQUIRE(r.ok());
  const router::Step& s = firstStep(r);
  REQUIRE(s.retry);
  CHECK(s.retry->maxRetries == 3);
  CHECK(s.retry->initialDelayMs == 50);
  CHECK(s.retry->maxDelayMs == 400);
  CHECK(s.retry->retryOnStatus);
  REQUIRE(r.graph.defaultRetry);
  CHECK(r.graph.defaultRetry->maxRetries == 2);
  CHECK(r.graph.defaultRetry->initialDelayMs == 100);
  CHECK(r.graph.defaultRetry->maxDelayMs == 5000);
  CHECK_FALSE(r.graph.defaultRetry->retryOnStatus);
  CHECK_FALSE(r.graph.nodes.at("root").steps.at(1).retry);

  GraphResult bad = router::parseGraph(
      R"({"defaultRetry":{"maxRetries":11},"nodes":{"root":{"routerType":"Sequence","steps":[)"
      R"({"name":"m","serviceUrl":"http://a/","retry":{"initialDelayMs":500,"maxDelayMs":100}},)"
      R"({"serviceUrl":"http://b/","retry":{"initialDelayMs":0,"maxRetries":-1}}]}}})");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error, Catch::Contains("graph: defaultRetry.maxRetries 11 is not within 0..10"));
  CHECK_THAT(bad.error,
             Catch::Contains("graph: node \"root\" step 0 (\"m\"): retry.maxDelayMs 100 is below "
                             "initialDelayMs 500"));
  CHECK_THAT(bad.error, Catch::Contains("retry.initialDelayMs 0 is not within"));
  CHECK_THAT(bad.error, Catch::Contains("retry.maxRetries -1 is not within"));

  GraphResult wrongType = router::parseGraph(
      R"({"nodes":{"root":{"routerType":"Sequence","steps":[{"serviceUrl":"http://a/",)"
      R"("retry":{"maxRetries":"3"}}]}}})");
  CHECK_THAT(wrongType.error, Catch::Contains("nodes[\"root\"].steps[0].retry.maxRetries"));

  GraphResult onNode = router::parseGraph(
      R"({"nodes":{"root":{"routerType":"Sequence","steps":[{"nodeName":"n","retry":{}}]},)"
      R"("n":{"routerType":"Sequence","steps":[{"serviceUrl":"http://a/"}]}}})");
  REQUIRE(onNode.ok());
  CHECK_THAT(onNode.graph.warnings.at(0), Catch::Contains("retry is ignored on a nodeName step"));
}

TEST_CASE(
    "v2Chaining, intermediateOutputs and propagateHeaders decode, with warnings where "
    "they do nothing",
    "[graph]") {
  GraphResult r = router::parseGraph(
      R"({"propagateHeaders":["X-A","X-{1,2}",null],"nodes":{"root":{"routerType":"Sequence",)"
      R"("intermediateOutputs":true,"steps":[{"serviceUrl":"http://a/"},)"
      R"({"serviceUrl":"http://b/","data":"$response","v2Chaining":true}]}}})");
  REQUIRE(r.ok());
  CHECK(r.graph.propagateHeaders == std::vector<std::string>{"X-A", "X-{1,2}", ""});
  CHECK(r.graph.nodes.at("root").intermediateOutputs);
  CHECK(r.graph.nodes.at("root").steps.at(1).v2Chaining);
  CHECK(r.graph.warnings.empty());

  GraphResult ignored = router::parseGraph(
      R"({"nodes":{"root":{"routerType":"Ensemble","intermediateOutputs":true,"steps":[)"
      R"({"serviceUrl":"http://a/","v2Chaining":true}]}}})");
  REQUIRE(ignored.ok());
  REQUIRE(ignored.graph.warnings.size() == 2);
  CHECK_THAT(ignored.graph.warnings[0], Catch::Contains("intermediateOutputs applies only"));
  CHECK_THAT(ignored.graph.warnings[1], Catch::Contains("v2Chaining applies only"));

  GraphResult wrong = router::parseGraph(R"({"propagateHeaders":"X-A","nodes":{}})");
  CHECK_THAT(wrong.error, Catch::Contains("propagateHeaders: want an array"));
  GraphResult element = router::parseGraph(R"({"propagateHeaders":["X-A",1],"nodes":{}})");
  CHECK_THAT(element.error, Catch::Contains("propagateHeaders[1]: want a string"));
}
