// The batcher in the real kserve-agent binary, in front of the recording model server: what the
// model receives, what every caller gets back, and every outcome of the merged call.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/peers.h"

using namespace testsupport;
using nlohmann::json;

namespace {

const std::string kUuid = "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$";

HttpResponse post(const Agent& agent, const std::string& path, const std::string& body) {
  return httpRequest(agent.url(path), {.method = "POST",
                                       .body = body,
                                       .headers = {"Content-Type: application/json"},
                                       .timeout = 30s});
}

// Posts every body concurrently, each from its own thread; answers in the same order.
std::vector<HttpResponse> postAll(
    const Agent& agent, const std::vector<std::pair<std::string, std::string>>& requests) {
  std::vector<HttpResponse> responses(requests.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < requests.size(); ++i) {
    threads.emplace_back(
        [&, i] { responses[i] = post(agent, requests[i].first, requests[i].second); });
  }
  for (auto& thread : threads)
    thread.join();
  return responses;
}

struct Recorded {
  std::string path;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

using testsupport::base64Decode;

// The model calls whose path contains `part`.
std::vector<Recorded> modelCalls(const ModelServer& model, const std::string& part) {
  std::vector<Recorded> calls;
  for (const auto& line : model.recordedLines()) {
    json entry = json::parse(line);
    std::string path = entry["path"];
    if (path.find(part) == std::string::npos) continue;
    Recorded call{path, base64Decode(entry["body_b64"].get<std::string>()), {}};
    for (const auto& header : entry["headers"]) {
      std::string name = header[0];
      for (auto& c : name)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      call.headers[name] = header[1];
    }
    calls.push_back(std::move(call));
  }
  return calls;
}

std::vector<std::string> batcherArgs(const std::string& size, const std::string& latency,
                                     std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--enable-batcher", "--max-batchsize", size, "--max-latency",
                                latency};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

}  // namespace

TEST_CASE("8 concurrent requests with N=4 make 2 model calls of 4 and each caller gets its own",
          "[batcher]") {
  ModelServer model;
  Agent agent(model.port(), batcherArgs("4", "10000"));
  std::vector<std::pair<std::string, std::string>> requests;
  for (int i = 0; i < 8; ++i) {
    requests.emplace_back("/v1/models/m:predict", R"({"instances":[[)" + std::to_string(i) + "," +
                                                      std::to_string(i * i) + "]]}");
  }
  auto responses = postAll(agent, requests);

  auto calls = modelCalls(model, ":predict");
  REQUIRE(calls.size() == 2);
  for (const auto& call : calls) {
    CHECK(call.path == "/v1/models/m:predict");
    CHECK(json::parse(call.body)["instances"].size() == 4);
    CHECK(call.headers.at("content-type") == "application/json");
  }
  std::map<std::string, int> batchSizes;
  for (int i = 0; i < 8; ++i) {
    const auto& response = responses[static_cast<size_t>(i)];
    INFO(i << ": " << response.body << response.error);
    REQUIRE(response.status == 200);
    CHECK(response.header("content-type") == "application/json");
    json reply = json::parse(response.body);
    CHECK(reply["message"] == "");
    CHECK(reply["predictions"] == json::array({json::array({i, i * i})}));
    batchSizes[reply["batchId"]]++;
    CHECK(response.body.starts_with(R"({"message":"","batchId":")"));
  }
  CHECK(batchSizes.size() == 2);
  for (const auto& [id, count] : batchSizes) {
    CHECK(std::regex_match(id, std::regex(kUuid)));
    CHECK(count == 4);
  }
}

TEST_CASE("a lone request is answered after the latency bound", "[batcher]") {
  ModelServer model;
  Agent agent(model.port(), batcherArgs("32", "200"));
  auto start = std::chrono::steady_clock::now();
  auto response = post(agent, "/v1/models/m:predict", R"({"instances":[1]})");
  auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(response.status == 200);
  CHECK(json::parse(response.body)["predictions"] == json::array({1}));
  // The agent's loop clock counts whole milliseconds and may lag by one more: its timer may fire
  // up to 2 ms before 200 ms of steady_clock have passed.
  CHECK(elapsed >= 198ms);
  CHECK(elapsed < 2s);
}

TEST_CASE("different models never share a batch", "[batcher]") {
  ModelServer model;
  Agent agent(model.port(), batcherArgs("4", "500"));
  auto responses = postAll(agent, {{"/v1/models/a:predict", R"({"instances":["a1"]})"},
                                   {"/v1/models/b:predict", R"({"instances":["b1"]})"},
                                   {"/v1/models/a:predict", R"({"instances":["a2"]})"},
                                   {"/v1/models/b:predict", R"({"instances":["b2"]})"}});
  auto calls = modelCalls(model, ":predict");
  REQUIRE(calls.size() == 2);
  for (const auto& call : calls) {
    std::string name = call.path == "/v1/models/a:predict" ? "a" : "b";
    json instances = json::parse(call.body)["instances"];
    INFO(call.path << " " << call.body);
    CHECK(instances.size() == 2);
    for (const auto& instance : instances)
      CHECK(instance.get<std::string>().substr(0, 1) == name);
  }
  CHECK(json::parse(responses[0].body)["predictions"] == json::array({"a1"}));
  CHECK(json::parse(responses[1].body)["predictions"] == json::array({"b1"}));
  CHECK(json::parse(responses[2].body)["predictions"] == json::array({"a2"}));
  CHECK(json::parse(responses[3].body)["predictions"] == json::array({"b2"}));
}

TEST_CASE("numbers and key order come back byte-identical", "[batcher]") {
  ModelServer model;
  Agent agent(model.port(), batcherArgs("1", "1000"));
  const std::string instances =
      R"(12345678901234567890,1.10,1e400,-0.0,1E-7,100000000000000000000000000001,)"
      R"({"b":1,"a":[2.50,"\u00e9<"]})";
  auto response = post(agent, "/v1/models/m:predict", "{\"instances\":[" + instances + "]}");
  REQUIRE(response.status == 200);
  auto calls = modelCalls(model, ":predict");
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].body == "{\"instances\":[" + instances + "]}");
  CHECK(response.body.ends_with(",\"predictions\":[" + instances + "]}"));
}

TEST_CASE("malformed bodies get upstream's 400 texts", "[batcher]") {
  ModelServer model;
  Agent agent(model.port(), batcherArgs("1", "1000"));
  auto bad = post(agent, "/v1/models/m:predict", "{not json");
  CHECK(bad.status == 400);
  CHECK(bad.body == "can't Unmarshal body\n");
  CHECK(bad.header("content-type") == "text/plain; charset=utf-8");
  CHECK(bad.header("x-content-type-options") == "nosniff");
  auto empty = post(agent, "/v1/models/m:predict", R"({"instances":[]})");
  CHECK(empty.status == 400);
  CHECK(empty.body == "no instances in the request\n");
  CHECK(modelCalls(model, ":predict").empty());
}

TEST_CASE("a model error reaches every caller as the message", "[batcher]") {
  ModelServer model({"--predict", "error"});
  Agent agent(model.port(), batcherArgs("2", "5000"));
  auto responses = postAll(agent, {{"/v1/models/m:predict", R"({"instances":[1]})"},
                                   {"/v1/models/m:predict", R"({"instances":[2]})"}});
  for (const auto& response : responses) {
    CHECK(response.status == 200);
    CHECK(response.body ==
          R"({"message":"{\"error\":\"model failed\"}","batchId":"","predictions":null})");
  }
}

TEST_CASE("an undecodable model answer gives Go's error text and the batch id", "[batcher]") {
  ModelServer model({"--predict", "garbage"});
  Agent agent(model.port(), batcherArgs("2", "5000"));
  auto responses = postAll(agent, {{"/v1/models/m:predict", R"({"instances":[1]})"},
                                   {"/v1/models/m:predict", R"({"instances":[2]})"}});
  for (const auto& response : responses) {
    REQUIRE(response.status == 200);
    json reply = json::parse(response.body);
    CHECK(reply["message"] == "invalid character 'x' looking for beginning of value");
    CHECK(std::regex_match(reply["batchId"].get<std::string>(), std::regex(kUuid)));
    CHECK(reply["predictions"].is_null());
  }
  CHECK(responses[0].body == responses[1].body);
}

TEST_CASE("a wrong prediction count answers every caller with the mismatch text", "[batcher]") {
  ModelServer model({"--predict", "mismatch"});
  Agent agent(model.port(), batcherArgs("2", "5000"));
  auto responses = postAll(agent, {{"/v1/models/m:predict", R"({"instances":[1]})"},
                                   {"/v1/models/m:predict", R"({"instances":[2]})"}});
  for (const auto& response : responses) {
    REQUIRE(response.status == 200);
    json reply = json::parse(response.body);
    CHECK(reply["message"] == "size of prediction is not equal to the size of instances");
    CHECK(std::regex_match(reply["batchId"].get<std::string>(), std::regex(kUuid)));
    CHECK(reply["predictions"].is_null());
  }
}

TEST_CASE("a model server that is down gives the transport error as the message", "[batcher]") {
  Agent agent(freePort(), batcherArgs("1", "1000"));
  auto response = post(agent, "/v1/models/m:predict", R"({"instances":[1]})");
  REQUIRE(response.status == 200);
  json reply = json::parse(response.body);
  CHECK_FALSE(reply["message"].get<std::string>().empty());
  CHECK(reply["batchId"] == "");
  CHECK(reply["predictions"].is_null());
}

TEST_CASE("a model that hangs is cut by the timeout and every caller is answered", "[batcher]") {
  ModelServer model({"--predict", "hang"});
  Agent agent(model.port(), batcherArgs("2", "5000", {"--batcher-timeout", "500ms"}));
  auto start = std::chrono::steady_clock::now();
  auto responses = postAll(agent, {{"/v1/models/m:predict", R"({"instances":[1]})"},
                                   {"/v1/models/m:predict", R"({"instances":[2]})"}});
  CHECK(std::chrono::steady_clock::now() - start < 10s);
  for (const auto& response : responses) {
    REQUIRE(response.status == 200);
    json reply = json::parse(response.body);
    CHECK_THAT(reply["message"].get<std::string>(), Catch::Contains("timed out"));
    CHECK(reply["predictions"].is_null());
  }
  // The agent is still serving.
  auto again = post(agent, "/v1/models/m:predict", R"({"instances":[1,2]})");
  CHECK(again.status == 200);
}

TEST_CASE("v2 requests are merged along the first dimension and split back", "[batcher]") {
  ModelServer model;
  Agent agent(model.port(), batcherArgs("3", "5000"));
  auto responses = postAll(
      agent,
      {{"/v2/models/m/infer",
        R"({"id":"one","inputs":[{"name":"x","shape":[1,2],"datatype":"INT64","data":[1,2]}]})"},
       {"/v2/models/m/infer",
        R"({"id":"two","inputs":[{"name":"x","shape":[2,2],"datatype":"INT64","data":[[3,4],[5,6]]}]})"}});
  auto calls = modelCalls(model, "/infer");
  REQUIRE(calls.size() == 1);
  json merged = json::parse(calls[0].body);
  CHECK(merged["inputs"][0]["shape"] == json::array({3, 2}));
  for (const auto& response : responses) {
    INFO(response.body);
    REQUIRE(response.status == 200);
    CHECK(response.header("content-type") == "application/json");
  }
  json one = json::parse(responses[0].body);
  json two = json::parse(responses[1].body);
  CHECK(one["id"] == "one");
  CHECK(two["id"] == "two");
  CHECK(one["model_name"] == "m");
  CHECK(one["outputs"][0]["name"] == "out_x");
  CHECK(one["outputs"][0]["shape"] == json::array({1, 2}));
  CHECK(two["outputs"][0]["shape"] == json::array({2, 2}));
  CHECK(one["outputs"][0]["data"] == json::array({1, 2}));
  CHECK(two["outputs"][0]["data"] == json::array({3, 4, 5, 6}));
}

TEST_CASE("v2 requests that cannot be merged pass through unbatched", "[batcher]") {
  ModelServer model;
  Agent agent(model.port(), batcherArgs("32", "5000"));
  auto start = std::chrono::steady_clock::now();
  auto response = post(agent, "/v2/models/m/infer",
                       R"({"inputs":[{"name":"x","shape":[2],"datatype":"INT64","data":[1]}]})");
  CHECK(std::chrono::steady_clock::now() - start < 4s);
  CHECK(response.status == 200);
  auto calls = modelCalls(model, "/infer");
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].body == R"({"inputs":[{"name":"x","shape":[2],"datatype":"INT64","data":[1]}]})");
}

TEST_CASE("shutdown flushes a pending batch before the agent exits", "[batcher]") {
  ModelServer model;
  Agent agent(model.port(), batcherArgs("32", "60000"));
  HttpResponse response;
  std::thread caller(
      [&] { response = post(agent, "/v1/models/m:predict", R"({"instances":[7]})"); });
  std::this_thread::sleep_for(300ms);
  CHECK(modelCalls(model, ":predict").empty());
  CHECK(agent.terminate(20s) == 0);
  caller.join();
  REQUIRE(response.status == 200);
  CHECK(json::parse(response.body)["predictions"] == json::array({7}));
}

TEST_CASE("batched bodies above the buffered-body limit get 413", "[batcher]") {
  ModelServer model;
  Agent agent(model.port(), batcherArgs("1", "1000", {"--max-buffered-body-bytes", "100"}));
  auto response =
      post(agent, "/v1/models/m:predict", R"({"instances":[")" + std::string(200, 'a') + R"("]})");
  CHECK(response.status == 413);
  CHECK(modelCalls(model, ":predict").empty());
}

TEST_CASE("a chunked v2 body above the buffered-body limit streams through unbatched",
          "[batcher]") {
  ModelServer model;
  Agent agent(model.port(), batcherArgs("32", "5000", {"--max-buffered-body-bytes", "100"}));
  const std::string body = R"({"inputs":[{"name":"x","shape":[1,40],"datatype":"INT64","data":[)" +
                           std::string("1,2,3,4,5,6,7,8,9,10,") +
                           std::string("1,2,3,4,5,6,7,8,9,10,") +
                           std::string("1,2,3,4,5,6,7,8,9,10,") + "1,2,3,4,5,6,7,8,9,10]}]}";
  REQUIRE(body.size() > 100);
  const size_t half = body.size() / 2;
  auto chunk = [](std::string_view part) {
    std::ostringstream out;
    out << std::hex << part.size() << "\r\n" << part << "\r\n";
    return out.str();
  };
  RawSocket socket(agent.port());
  REQUIRE(socket.connected());
  REQUIRE(
      socket.send("POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  "application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
                  chunk(std::string_view(body).substr(0, half))));
  std::this_thread::sleep_for(100ms);
  REQUIRE(socket.send(chunk(std::string_view(body).substr(half)) + "0\r\n\r\n"));
  std::string reply = socket.readUntil([](const std::string& s) { return countResponses(s) == 1; });
  INFO(reply);
  CHECK(reply.rfind("HTTP/1.1 200", 0) == 0);
  auto calls = modelCalls(model, "/infer");
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].body == body);
}

TEST_CASE("percent-encoded :predict paths are batched and sent as the client spelled them",
          "[batcher]") {
  ModelServer model({"--decode-path"});
  Agent agent(model.port(), batcherArgs("2", "5000"));
  auto responses = postAll(agent, {{"/v1/models/echo%3Apredict", R"({"instances":[1]})"},
                                   {"/v1/models/echo%3apredict", R"({"instances":[2]})"},
                                   {"/v1/models/echo%3Apredict", R"({"instances":[3]})"},
                                   {"/v1/models/echo%3apredict", R"({"instances":[4]})"}});
  auto calls = modelCalls(model, "/v1/models/echo");
  REQUIRE(calls.size() == 2);
  std::map<std::string, std::string> bodies;
  for (const auto& call : calls)
    bodies[call.path] = call.body;
  CHECK(json::parse(bodies.at("/v1/models/echo%3Apredict"))["instances"].size() == 2);
  CHECK(json::parse(bodies.at("/v1/models/echo%3apredict"))["instances"].size() == 2);
  for (int i = 0; i < 4; ++i) {
    const auto& response = responses[static_cast<size_t>(i)];
    INFO(i << ": " << response.body << response.error);
    REQUIRE(response.status == 200);
    json reply = json::parse(response.body);
    CHECK(reply["message"] == "");
    CHECK(std::regex_match(reply["batchId"].get<std::string>(), std::regex(kUuid)));
    CHECK(reply["predictions"] == json::array({i + 1}));
  }
  CHECK(json::parse(responses[0].body)["batchId"] == json::parse(responses[2].body)["batchId"]);
  CHECK(json::parse(responses[1].body)["batchId"] == json::parse(responses[3].body)["batchId"]);
}

TEST_CASE("a v2 answer of 201 is split and every caller gets only its own rows", "[batcher]") {
  ModelServer model({"--infer-status", "201"});
  Agent agent(model.port(), batcherArgs("2", "5000"));
  auto responses = postAll(
      agent,
      {{"/v2/models/m/infer",
        R"({"id":"a","inputs":[{"name":"o","shape":[1],"datatype":"INT64","data":[111]}]})"},
       {"/v2/models/m/infer",
        R"({"id":"b","inputs":[{"name":"o","shape":[1],"datatype":"INT64","data":[222]}]})"}});
  REQUIRE(modelCalls(model, "/infer").size() == 1);
  const std::vector<std::pair<std::string, int>> expected{{"a", 111}, {"b", 222}};
  for (size_t i = 0; i < 2; ++i) {
    const auto& response = responses[i];
    INFO(response.body << response.error);
    CHECK(response.status == 201);
    json reply = json::parse(response.body);
    CHECK(reply["id"] == expected[i].first);
    CHECK(reply["outputs"][0]["shape"] == json::array({1}));
    CHECK(reply["outputs"][0]["data"] == json::array({expected[i].second}));
  }
}

TEST_CASE("lone surrogate escapes are batched with their bytes kept", "[batcher]") {
  ModelServer model;
  Agent agent(model.port(), batcherArgs("1", "1000"));
  auto response = post(agent, "/v1/models/m:predict",
                       R"({"instances":["\ud800",{"\udc00":"a\udfffb"}],"note":"\udc00"})");
  REQUIRE(response.status == 200);
  auto calls = modelCalls(model, ":predict");
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].body == R"({"instances":["\ud800",{"\udc00":"a\udfffb"}]})");
  CHECK(response.body.starts_with(R"({"message":"","batchId":")"));
  CHECK(response.body.ends_with(R"(,"predictions":["\ud800",{"\udc00":"a\udfffb"}]})"));
}

TEST_CASE("a merged call to a hung model does not hold the agent past the drain timeout",
          "[batcher]") {
  ModelServer model({"--predict", "hang"});
  Agent agent(model.port(),
              batcherArgs("1", "1000", {"--batcher-timeout", "60s", "--drain-timeout", "1s"}));
  HttpResponse response;
  std::thread caller(
      [&] { response = post(agent, "/v1/models/m:predict", R"({"instances":[7]})"); });
  const auto sent = std::chrono::steady_clock::now();
  while (modelCalls(model, ":predict").empty() && std::chrono::steady_clock::now() - sent < 10s)
    std::this_thread::sleep_for(20ms);
  REQUIRE(modelCalls(model, ":predict").size() == 1);
  const auto start = std::chrono::steady_clock::now();
  CHECK(agent.terminate(20s) != -1);
  CHECK(std::chrono::steady_clock::now() - start < 10s);
  caller.join();
  REQUIRE(response.status == 200);
  CHECK_THAT(json::parse(response.body)["message"].get<std::string>(),
             Catch::Contains("shut down"));
}
