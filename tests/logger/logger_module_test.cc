#include "logger/logger_module.h"

#include <prometheus/registry.h>

#include <catch2/catch.hpp>
#include <map>
#include <set>

#include "tests/logger/helpers.h"

using namespace std::chrono_literals;
using logtest::contextFor;
using logtest::FakeExchange;
using logtest::Loop;
using logtest::optionsFor;
using logtest::Sink;

namespace {

struct Exchange {
  core::Headers requestHeaders;
  std::vector<std::string> requestChunks;
  int status = 200;
  core::Headers responseHeaders;
  std::vector<std::string> responseChunks;
  bool complete = true;
  bool responds = true;
  bool received = true;  // the whole request arrived
  std::string method = "POST";
};

// Plays one exchange through the module's hooks as the chain would.
void play(logger::LoggerModule& module, const Exchange& e) {
  static uint64_t nextId = 1;
  core::RequestHead head;
  head.method = e.method;
  head.target = "/v1/models/m:predict";
  head.headers = e.requestHeaders;
  auto exchange = std::make_shared<FakeExchange>(nextId++, head);
  exchange->received = e.received;
  REQUIRE(module.onRequestHeaders(exchange) == core::Action::Continue);
  bool requestData = (module.observes() & core::kObserveRequestData) != 0;
  bool responseHooks = (module.observes() & core::kObserveResponse) != 0;
  if (requestData) {
    for (const auto& chunk : e.requestChunks)
      module.onRequestData(*exchange, chunk);
  }
  if (e.responds) {
    core::ResponseHead response;
    response.status = e.status;
    response.headers = e.responseHeaders;
    exchange->setResponse(response);
    if (responseHooks) {
      module.onResponseHeaders(*exchange);
      for (const auto& chunk : e.responseChunks)
        module.onResponseData(*exchange, chunk);
    }
  }
  module.onComplete(*exchange, e.complete);
}

const nlohmann::json* findType(const std::vector<nlohmann::json>& events,
                               const std::string& suffix) {
  for (const auto& event : events) {
    if (event["type"] == "org.kubeflow.serving.inference." + suffix) return &event;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("The module logs a request and its response as two events with one id", "[logger]") {
  Sink sink;
  Loop loop;
  {
    logger::Options options = optionsFor(sink);
    options.inferenceService = "sklearn-iris";
    options.namespace_ = "models";
    options.component = "predictor";
    options.endpoint = "default";
    logger::LoggerModule module(contextFor(loop), options);
    play(module, {.requestHeaders = {{"Content-Type", " application/json "}},
                  .requestChunks = {R"({"instances":)", R"([[1,2]]})"},
                  .responseHeaders = {{"Content-Type", "application/json; charset=utf-8"}},
                  .responseChunks = {R"({"predictions":[1]})"}});
    CHECK(module.openCaptures() == 0);
    REQUIRE(loop.runUntil([&] { return module.stats().sent == 2; }));
    auto events = sink.waitForEvents(2);
    const auto* request = findType(events, "request");
    const auto* response = findType(events, "response");
    REQUIRE(request != nullptr);
    REQUIRE(response != nullptr);
    CHECK((*request)["id"] == (*response)["id"]);
    CHECK((*request)["id"].get<std::string>().size() == 36);
    CHECK((*request)["source"] == "http://localhost:9081/");
    CHECK(logtest::eventBody(*request) == R"({"instances":[[1,2]]})");
    CHECK(logtest::eventBody(*response) == R"({"predictions":[1]})");
    CHECK((*request)["datacontenttype"] == "application/json");
    CHECK((*response)["datacontenttype"] == "application/json; charset=utf-8");
    for (const auto* event : {request, response}) {
      CHECK((*event)["extensions"]["inferenceservicename"] == "sklearn-iris");
      CHECK((*event)["extensions"]["namespace"] == "models");
      CHECK((*event)["extensions"]["component"] == "predictor");
      CHECK((*event)["extensions"]["endpoint"] == "default");
      CHECK((*event)["extensions"]["metadata"] == "{}");
      CHECK_FALSE((*event)["extensions"].contains("annotations"));
      CHECK_FALSE((*event)["extensions"].contains("statuscode"));
      CHECK(logtest::eventHeader(*event, "ce-recordedtime") >=
            logtest::eventHeader(*event, "ce-time"));
    }
    CHECK(logtest::eventHeader(*response, "ce-time") >= logtest::eventHeader(*request, "ce-time"));
  }
  CHECK(loop.close());
}

TEST_CASE("Log modes select the request or the response event", "[logger]") {
  Sink sink;
  Loop loop;
  {
    logger::Options requestOnly = optionsFor(sink);
    requestOnly.logMode = "request";
    logger::Options responseOnly = optionsFor(sink);
    responseOnly.logMode = "response";
    logger::LoggerModule requests(contextFor(loop), requestOnly);
    logger::LoggerModule responses(contextFor(loop), responseOnly);
    CHECK((requests.observes() & core::kObserveResponse) == 0);
    CHECK((responses.observes() & core::kObserveRequestData) == 0);
    play(requests, {.requestHeaders = {{"Ce-Id", "req-mode"}},
                    .requestChunks = {"in"},
                    .responseChunks = {"out"}});
    play(responses, {.requestHeaders = {{"Ce-Id", "resp-mode"}},
                     .requestChunks = {"in"},
                     .responseChunks = {"out"}});
    REQUIRE(
        loop.runUntil([&] { return requests.stats().sent == 1 && responses.stats().sent == 1; }));
    loop.runFor(100ms);
    auto events = sink.waitForEvents(2);
    REQUIRE(events.size() == 2);
    for (const auto& event : events) {
      if (event["id"] == "req-mode") {
        CHECK(event["type"] == "org.kubeflow.serving.inference.request");
        CHECK(logtest::eventBody(event) == "in");
      } else {
        CHECK(event["id"] == "resp-mode");
        CHECK(event["type"] == "org.kubeflow.serving.inference.response");
        CHECK(logtest::eventBody(event) == "out");
      }
    }
  }
  CHECK(loop.close());
}

TEST_CASE("Only 200 responses are logged unless --log-all-responses", "[logger]") {
  Sink sink;
  Loop loop;
  {
    logger::LoggerModule plain(contextFor(loop), optionsFor(sink));
    logger::Options all = optionsFor(sink);
    all.logAllResponses = true;
    logger::LoggerModule everything(contextFor(loop), all);
    play(plain,
         {.requestHeaders = {{"Ce-Id", "plain-400"}}, .status = 400, .responseChunks = {"bad"}});
    play(everything, {.requestHeaders = {{"Ce-Id", "all-400"}},
                      .status = 400,
                      .responseHeaders = {{"Content-Type", "text/plain"}},
                      .responseChunks = {"bad"}});
    play(everything, {.requestHeaders = {{"Ce-Id", "all-200"}}, .responseChunks = {"ok"}});
    REQUIRE(loop.runUntil([&] { return plain.stats().sent == 1 && everything.stats().sent == 4; }));
    loop.runFor(100ms);
    auto events = sink.waitForEvents(5);
    REQUIRE(events.size() == 5);
    int responses = 0;
    for (const auto& event : events) {
      if (event["type"] != "org.kubeflow.serving.inference.response") continue;
      ++responses;
      CHECK(event["id"] != "plain-400");
      if (event["id"] == "all-400") {
        CHECK(event["extensions"]["statuscode"] == "400");
        CHECK(logtest::eventHeader(event, "ce-statuscode") == "400");
        CHECK(event["datacontenttype"] == "text/plain");
        CHECK(logtest::eventBody(event) == "bad");
      } else {
        CHECK(event["extensions"]["statuscode"] == "200");
      }
    }
    CHECK(responses == 2);
  }
  CHECK(loop.close());
}

TEST_CASE("Kubelet probes are not logged", "[logger]") {
  Sink sink;
  Loop loop;
  {
    logger::LoggerModule module(contextFor(loop), optionsFor(sink));
    play(module, {.requestHeaders = {{"User-Agent", "kube-probe/1.29"}}, .responseChunks = {"ok"}});
    play(module, {.requestHeaders = {{"Ce-Id", "real"}, {"User-Agent", "curl/8"}},
                  .responseChunks = {"ok"}});
    REQUIRE(loop.runUntil([&] { return module.stats().sent == 2; }));
    loop.runFor(100ms);
    for (const auto& event : sink.waitForEvents(2))
      CHECK(event["id"] == "real");
  }
  CHECK(loop.close());
}

TEST_CASE("Metadata headers match any case, annotations are sent, Ce-Id is reused", "[logger]") {
  Sink sink;
  Loop loop;
  {
    logger::Options options = optionsFor(sink);
    options.metadataHeaders = {"x-request-id", "Foo"};
    options.metadataAnnotations = {"serving.kserve.io/team=ml", "cost=a=b"};
    options.sourceUri = "sklearn-iris-predictor-7d9f";
    logger::LoggerModule module(contextFor(loop), options);
    play(module, {.requestHeaders = {{"X-Request-ID", "r-1"},
                                     {"foo", "bar"},
                                     {"FOO", "baz"},
                                     {"Ignored", "x"},
                                     {"ce-id", "client-id-7"}},
                  .responseChunks = {"{}"}});
    REQUIRE(loop.runUntil([&] { return module.stats().sent == 2; }));
    auto events = sink.waitForEvents(2);
    REQUIRE(events.size() == 2);
    for (const auto& event : events) {
      CHECK(event["id"] == "client-id-7");
      CHECK(event["source"] == "sklearn-iris-predictor-7d9f");
      CHECK(event["extensions"]["metadata"] == R"({"Foo":["bar","baz"],"X-Request-Id":["r-1"]})");
      CHECK(event["extensions"]["annotations"] ==
            R"({"cost":"a=b","serving.kserve.io/team":"ml"})");
    }
  }
  CHECK(loop.close());
}

TEST_CASE("A body larger than the byte bound is dropped and counted, the other is sent",
          "[logger]") {
  Sink sink;
  Loop loop;
  {
    prometheus::Registry registry;
    logger::Options options = optionsFor(sink);
    options.logQueueBytes = 1000;
    options.metrics = &registry;
    logger::LoggerModule module(contextFor(loop), options);
    play(module, {.requestHeaders = {{"Ce-Id", "big"}},
                  .requestChunks = {std::string(600, 'a'), std::string(600, 'b')},
                  .responseChunks = {"small"}});
    play(module, {.requestHeaders = {{"Ce-Id", "announced"}, {"Content-Length", "5000"}},
                  .requestChunks = {"partial"},
                  .responseChunks = {"small"}});
    REQUIRE(loop.runUntil([&] { return module.stats().sent == 2; }));
    CHECK(module.stats().droppedBy[logger::DropReason::TooLarge] == 2);
    for (const auto& event : sink.waitForEvents(2)) {
      CHECK(event["type"] == "org.kubeflow.serving.inference.response");
    }
    bool sawDropped = false;
    for (const auto& family : registry.Collect()) {
      if (family.name != "kserve_agent_logger_events_dropped_total") continue;
      for (const auto& metric : family.metric) {
        sawDropped = sawDropped || metric.counter.value == 2;
      }
    }
    CHECK(sawDropped);
  }
  CHECK(loop.close());
}

TEST_CASE("A HEAD answer's Content-Length does not count against the byte bound", "[logger]") {
  Sink sink;
  Loop loop;
  {
    logger::Options options = optionsFor(sink);
    options.logQueueBytes = 1000;
    logger::LoggerModule module(contextFor(loop), options);
    play(module, {.requestHeaders = {{"Ce-Id", "head"}},
                  .responseHeaders = {{"Content-Length", "1000000"}},
                  .method = "HEAD"});
    REQUIRE(loop.runUntil([&] { return module.stats().sent == 2; }));
    CHECK(module.stats().dropped == 0);
  }
  CHECK(loop.close());
}

TEST_CASE("A broken-off exchange logs the request once it had arrived whole or been answered",
          "[logger]") {
  Sink sink;
  Loop loop;
  {
    logger::LoggerModule module(contextFor(loop), optionsFor(sink));
    play(module, {.requestHeaders = {{"Ce-Id", "partial"}},
                  .requestChunks = {"x"},
                  .complete = false,
                  .responds = false,
                  .received = false});
    play(module, {.requestHeaders = {{"Ce-Id", "no-answer"}},
                  .requestChunks = {"x"},
                  .complete = false,
                  .responds = false});
    play(module, {.requestHeaders = {{"Ce-Id", "cut"}},
                  .requestChunks = {"x"},
                  .responseChunks = {"frag"},
                  .complete = false,
                  .received = false});
    REQUIRE(loop.runUntil([&] { return module.stats().sent == 2; }));
    loop.runFor(200ms);
    auto events = sink.events();
    REQUIRE(events.size() == 2);
    std::set<std::string> ids;
    for (const auto& event : events) {
      ids.insert(event["id"].get<std::string>());
      CHECK(event["type"] == "org.kubeflow.serving.inference.request");
    }
    CHECK(ids == std::set<std::string>{"no-answer", "cut"});
    CHECK(module.openCaptures() == 0);
  }
  CHECK(loop.close());
}

TEST_CASE("Drain waits for open exchanges, then for their events", "[logger]") {
  Sink sink(logtest::delayed(100));
  Loop loop;
  {
    logger::LoggerModule module(contextFor(loop), optionsFor(sink));
    core::RequestHead head;
    head.method = "POST";
    head.target = "/";
    head.headers = {{"Ce-Id", "late"}};
    auto exchange = std::make_shared<FakeExchange>(999, head);
    module.onRequestHeaders(exchange);
    module.onRequestData(*exchange, "late body");
    bool done = false;
    module.drain(std::chrono::steady_clock::now() + 10s, [&] { done = true; });
    loop.runFor(50ms);
    CHECK_FALSE(done);
    core::ResponseHead response;
    exchange->setResponse(response);
    module.onResponseHeaders(*exchange);
    module.onResponseData(*exchange, "reply");
    module.onComplete(*exchange, true);
    REQUIRE(loop.runUntil([&] { return done; }));
    CHECK(module.stats().sent == 2);
    CHECK(sink.events().size() == 2);
  }
  CHECK(loop.close());
}

TEST_CASE("makeLogger is off without a URL and on with one", "[logger]") {
  Loop loop;
  core::FilterContext context = contextFor(loop);
  CHECK(logger::makeLogger(context, logger::Options{}) == nullptr);
  logger::Options options;
  options.logUrl = "http://127.0.0.1:9/";
  CHECK(logger::makeLogger(context, options) != nullptr);
  CHECK(loop.close());
}

TEST_CASE("Large bodies with and without a Content-Length are captured whole, within the bound",
          "[logger]") {
  Sink sink;
  Loop loop;
  {
    logger::Options options = optionsFor(sink);
    options.logQueueBytes = size_t{3} << 20;
    logger::LoggerModule module(contextFor(loop), options);
    // Pieces of odd sizes, so that a body passes the size where it moves to a capture buffer
    // in the middle of one; a chunked body (no Content-Length) and an announced one.
    std::string chunked;
    std::vector<std::string> chunkedPieces;
    for (size_t i = 0; chunked.size() < (size_t{1} << 20); ++i) {
      std::string piece(3001 + i % 7, static_cast<char>('a' + i % 26));
      chunked += piece;
      chunkedPieces.push_back(piece);
    }
    std::string announced = logtest::patternBytes((size_t{1} << 20) + 5);
    std::vector<std::string> announcedPieces;
    for (size_t at = 0; at < announced.size(); at += 65536)
      announcedPieces.push_back(announced.substr(at, 65536));
    play(module, {.requestHeaders = {{"Ce-Id", "chunked"}},
                  .requestChunks = chunkedPieces,
                  .responseHeaders = {{"Content-Length", std::to_string(announced.size())}},
                  .responseChunks = announcedPieces});
    REQUIRE(loop.runUntil([&] { return module.stats().sent == 2 && module.stats().depth == 0; }));
    // A chunked body that grows past the bound is dropped as too large; the rest goes on.
    std::vector<std::string> tooMany(40, std::string(100'000, 'x'));
    play(module, {.requestHeaders = {{"Ce-Id", "unbounded"}},
                  .requestChunks = tooMany,
                  .responseChunks = {"small"}});
    REQUIRE(loop.runUntil([&] { return module.stats().sent == 3; }));
    CHECK(module.stats().droppedBy[logger::DropReason::TooLarge] == 1);
    auto events = sink.waitForEvents(3);
    REQUIRE(events.size() == 3);
    std::map<std::string, std::string> bodies;
    for (const auto& event : events) {
      bodies[event["id"].get<std::string>() + " " + event["type"].get<std::string>()] =
          logtest::eventBody(event);
    }
    CHECK(bodies["chunked org.kubeflow.serving.inference.request"] == chunked);
    CHECK(bodies["chunked org.kubeflow.serving.inference.response"] == announced);
    CHECK(bodies["unbounded org.kubeflow.serving.inference.response"] == "small");
    CHECK(loop.runUntil([&] { return module.stats().depth == 0; }));
  }
  CHECK(loop.close());
}
