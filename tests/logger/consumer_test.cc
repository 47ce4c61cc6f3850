// The logger's events as a consumer reads them: the official CloudEvents SDK (JavaScript, in
// tests/support/ce_sink.js) parses every event the real agent delivers. A client must not choose
// what the consumer reads, and the de-duplication key the README gives must keep every event.
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <thread>

#include "tests/logger/helpers.h"
#include "tests/support/peers.h"

using namespace std::chrono_literals;
using logtest::Sink;
using logtest::SinkOptions;
using nlohmann::json;
using testsupport::Agent;
using testsupport::HttpOptions;
using testsupport::ModelServer;

namespace {

constexpr const char* kRequestType = "org.kubeflow.serving.inference.request";
constexpr const char* kResponseType = "org.kubeflow.serving.inference.response";

std::string queryEscape(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

// The CloudEvents HTTP binding's header encoding of the few characters these types use.
std::string headerEncoded(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == ' ') {
      out += "%20";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("Consumer: a client's CloudEvents Content-Type never makes its body the event",
          "[logger][integration][consumer]") {
  ModelServer model;
  Sink sink;
  Agent agent(model.port(), {"--log-url", sink.url(), "--inference-service", "real-isvc",
                             "--namespace", "real-ns", "--component", "predictor"});
  // What a client would like the consumer to read: an event of its own, or a batch of them.
  const std::string forged =
      R"({"specversion":"1.0","id":"forged","source":"evil","type":"forged.type",)"
      R"("inferenceservicename":"victim","namespace":"victim-ns","datacontenttype":)"
      R"("application/json","data":{"x":1}})";
  const std::string batch = "[" + forged + "," + forged + "]";
  struct Case {
    std::string contentType;
    bool cloudEvents;  // a CloudEvents media type: sent as application/octet-stream
  };
  const std::vector<Case> cases = {
      {"application/cloudevents+json", true},
      {"application/cloudevents-batch+json", true},
      {"application/cloudevents+json; charset=utf-8", true},
      {"APPLICATION/CLOUDEVENTS+JSON", true},
      {"Application/CloudEvents-Batch+JSON; charset=UTF-8", true},
      {"application/cloudevents", true},
      {"application/cloudevents+json;charset=utf-8", true},
      {"application/json", false},
      {"text/plain", false},
  };
  std::map<std::string, const Case*> byId;
  for (const Case& c : cases) {
    std::string id = "exchange-" + std::to_string(byId.size());
    byId[id] = &c;
    bool isBatch = c.contentType.find("atch") != std::string::npos;
    HttpOptions options;
    options.method = "POST";
    options.body = isBatch ? batch : forged;
    // The model server answers with the same type, so the response event is tried too.
    options.headers = {"Content-Type: " + c.contentType, "Ce-Id: " + id};
    auto answer =
        testsupport::httpRequest(agent.url("/echo?ctype=" + queryEscape(c.contentType)), options);
    REQUIRE(answer.status == 200);
    REQUIRE(answer.header("content-type") == c.contentType);
  }
  auto events = sink.waitForEvents(2 * cases.size(), 30s);
  std::this_thread::sleep_for(300ms);
  events = sink.events();
  // One request and one response event per exchange: no batch was unpacked into several.
  REQUIRE(events.size() == 2 * cases.size());
  std::map<std::string, std::set<std::string>> typesById;
  for (const json& event : events) {
    INFO(event.dump());
    REQUIRE_FALSE(event.contains("error"));
    std::string id = event["id"];
    REQUIRE(byId.contains(id));
    const Case& c = *byId[id];
    typesById[id].insert(event["type"].get<std::string>());
    CHECK(event["source"] == "http://localhost:" + std::to_string(agent.port()) + "/");
    CHECK(event["specversion"] == "1.0");
    CHECK(event["extensions"]["inferenceservicename"] == "real-isvc");
    CHECK(event["extensions"]["namespace"] == "real-ns");
    CHECK(event["extensions"]["component"] == "predictor");
    bool isBatch = c.contentType.find("atch") != std::string::npos;
    CHECK(logtest::eventBody(event) == (isBatch ? batch : forged));
    if (c.cloudEvents) {
      CHECK(event["datacontenttype"] == "application/octet-stream");
      CHECK(event["extensions"]["originalcontenttype"] == headerEncoded(c.contentType));
    } else {
      CHECK(event["datacontenttype"] == c.contentType);
      CHECK_FALSE(event["extensions"].contains("originalcontenttype"));
    }
  }
  for (const auto& [id, types] : typesById) {
    INFO(id);
    CHECK(types == std::set<std::string>{kRequestType, kResponseType});
  }
  CHECK(typesById.size() == cases.size());
}

TEST_CASE(
    "Consumer: de-duplicating on id, source and type keeps both events of every exchange "
    "and drops re-deliveries",
    "[logger][integration][consumer]") {
  ModelServer model;
  SinkOptions options;
  options.redeliver = 3;  // three events reach the consumer twice
  Sink sink(options);
  Agent agent(model.port(), {"--log-url", sink.url()});
  constexpr size_t kExchanges = 6;
  for (size_t i = 0; i < kExchanges; ++i) {
    HttpOptions request;
    request.method = "POST";
    request.body = "body-" + std::to_string(i);
    request.headers = {"Content-Type: text/plain", "Ce-Id: dedup-" + std::to_string(i)};
    REQUIRE(testsupport::httpRequest(agent.url("/echo"), request).status == 200);
  }
  auto events = sink.waitForEvents(2 * kExchanges + 3, 30s);
  std::this_thread::sleep_for(300ms);
  events = sink.events();
  REQUIRE(events.size() == 2 * kExchanges + 3);

  // The consumer: an event whose Ce-Id, Ce-Source and Ce-Type were seen before is a
  // re-delivery.
  std::set<std::string> seen;
  std::vector<const json*> kept;
  size_t dropped = 0;
  for (const json& event : events) {
    REQUIRE_FALSE(event.contains("error"));
    std::string key = event["id"].get<std::string>() + '\n' + event["source"].get<std::string>() +
                      '\n' + event["type"].get<std::string>();
    if (seen.insert(key).second) {
      kept.push_back(&event);
    } else {
      ++dropped;
    }
  }
  CHECK(dropped == 3);
  REQUIRE(kept.size() == 2 * kExchanges);
  std::map<std::string, std::set<std::string>> typesById;
  for (const json* event : kept) {
    typesById[(*event)["id"]].insert((*event)["type"].get<std::string>());
    std::string body = logtest::eventBody(*event);
    CHECK(body == "body-" + (*event)["id"].get<std::string>().substr(6));
  }
  REQUIRE(typesById.size() == kExchanges);
  for (const auto& [id, types] : typesById) {
    INFO(id);
    CHECK(types == std::set<std::string>{kRequestType, kResponseType});
  }

  // The key the README gave before, Ce-Id and Ce-Source, takes every response event for a
  // re-delivery of its request event.
  std::set<std::string> idAndSource;
  for (const json& event : events) {
    idAndSource.insert(event["id"].get<std::string>() + '\n' + event["source"].get<std::string>());
  }
  CHECK(idAndSource.size() == kExchanges);
}
