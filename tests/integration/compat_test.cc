// The agent as third-party clients see it: ApacheBench's HTTP/1.0 keep-alive, request-line
// versions as RFC 9112 §2.3 and Go's server take them, and the metrics page as a Prometheus
// parser reads it.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "tests/support/peers.h"

using namespace testsupport;
using nlohmann::json;

namespace {

// The value of an ApacheBench report line such as "Complete requests:      20" (-1 when absent).
long abFigure(const std::string& report, const std::string& label) {
  std::smatch match;
  if (!std::regex_search(report, match, std::regex(label + ":\\s+(\\d+)"))) return -1;
  return std::stol(match[1]);
}

// The head of the first response in `stream` (up to the blank line), "" when incomplete.
std::string headOf(const std::string& stream) {
  size_t end = stream.find("\r\n\r\n");
  return end == std::string::npos ? "" : stream.substr(0, end + 4);
}

bool hasCompleteResponses(const std::string& stream, size_t count) {
  return countResponses(stream) >= count;
}

}  // namespace

TEST_CASE("ApacheBench with HTTP/1.0 keep-alive completes every request on kept connections",
          "[compat][keepalive]") {
  ModelServer model;
  Agent agent(model.port());
  std::string bodyFile = makeTempDir("ab") + "/body.json";
  writeFile(bodyFile, R"({"instances":[[1,2,3]]})");
  // GETs one and four at a time, and POSTs (ab sends their bodies with Content-Length). -s:
  // ab's own timeout per request, so that a connection left waiting fails the run quickly.
  for (const auto& options : std::vector<std::vector<std::string>>{
           {"-c", "1", agent.url("/item")},
           {"-c", "4", agent.url("/item")},
           {"-c", "2", "-p", bodyFile, "-T", "application/json", agent.url("/echo")},
       }) {
    std::vector<std::string> argv{"/usr/bin/ab", "-k", "-n", "40", "-s", "10"};
    argv.insert(argv.end(), options.begin(), options.end());
    Process ab(argv);
    REQUIRE(ab.wait(60s) == 0);
    std::string report = ab.output();
    INFO(report);
    CHECK(abFigure(report, "Complete requests") == 40);
    CHECK(abFigure(report, "Failed requests") == 0);
    CHECK(abFigure(report, "Keep-Alive requests") == 40);
    CHECK(report.find("Non-2xx responses") == std::string::npos);
  }
}

TEST_CASE("HTTP/1.0 answers say whether the connection stays open", "[compat][keepalive]") {
  ModelServer model;
  Agent agent(model.port());
  RawSocket socket(agent.port());
  REQUIRE(socket.connected());
  // Kept alive on request: told so, and the next request is served on the same connection.
  const std::string keepAlive = "GET /item/1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
  REQUIRE(socket.send(keepAlive));
  std::string first = socket.readUntil([](const std::string& s) { return countResponses(s) == 1; });
  CHECK_THAT(headOf(first), Catch::StartsWith("HTTP/1.1 200") &&
                                Catch::Contains("\r\nConnection: keep-alive\r\n") &&
                                Catch::Contains("\r\nContent-Length: "));
  // An answer the agent makes itself (a kubelet probe) says the same.
  REQUIRE(
      socket.send("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nUser-Agent: kube-probe/1.29\r\n"
                  "K-Network-Probe: queue\r\n\r\n"));
  std::string probe = socket.readUntil([](const std::string& s) { return countResponses(s) == 1; });
  CHECK_THAT(headOf(probe), Catch::StartsWith("HTTP/1.1 200") &&
                                Catch::Contains("\r\nConnection: keep-alive\r\n"));
  // An answer of unknown length ends with the connection: told so, then closed.
  REQUIRE(socket.send("GET /echo?size=10&chunked=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  std::string closeDelimited = socket.readAll(5s);
  CHECK_THAT(headOf(closeDelimited),
             Catch::StartsWith("HTTP/1.1 200") && Catch::Contains("\r\nConnection: close\r\n"));
  CHECK(closeDelimited.substr(closeDelimited.find("\r\n\r\n") + 4).size() == 10);

  // Without keep-alive: told the connection closes, and it does.
  RawSocket plain(agent.port());
  REQUIRE(plain.send("GET /item/2 HTTP/1.0\r\n\r\n"));
  std::string closed = plain.readAll(5s);
  CHECK_THAT(headOf(closed),
             Catch::StartsWith("HTTP/1.1 200") && Catch::Contains("\r\nConnection: close\r\n"));
  CHECK(countResponses(closed) == 1);

  // HTTP/1.1 answers are unchanged: no Connection field while the connection stays open, close
  // when the client asked for it.
  RawSocket modern(agent.port());
  REQUIRE(modern.send("GET /item/3 HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string kept = modern.readUntil([](const std::string& s) { return countResponses(s) == 1; });
  CHECK(headOf(kept).find("Connection:") == std::string::npos);
  REQUIRE(modern.send("GET /item/4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  std::string last = modern.readAll(5s);
  CHECK_THAT(headOf(last), Catch::Contains("\r\nConnection: close\r\n"));
}

TEST_CASE("request-line versions get the answers Go's server gives", "[compat][version]") {
  ModelServer model;
  Agent agent(model.port());
  struct Case {
    std::string version;
    std::string statusLine;
  };
  // 505 for another major version, 400 for a malformed one; nothing reaches the model server.
  for (const Case& c : std::vector<Case>{
           {"HTTP/2.0", "HTTP/1.1 505 HTTP Version Not Supported\r\n"},
           {"HTTP/0.9", "HTTP/1.1 505 HTTP Version Not Supported\r\n"},
           {"HTTP/3.0", "HTTP/1.1 505 HTTP Version Not Supported\r\n"},
           {"HTTP/1.10", "HTTP/1.1 400 Bad Request\r\n"},
           {"HTTP/01.1", "HTTP/1.1 400 Bad Request\r\n"},
       }) {
    RawSocket socket(agent.port());
    REQUIRE(socket.send("GET /item " + c.version + "\r\nHost: x\r\n\r\n"));
    std::string answer = socket.readAll(5s);
    INFO(c.version << " -> " << answer);
    CHECK_THAT(answer, Catch::StartsWith(c.statusLine));
    CHECK_THAT(headOf(answer), Catch::Contains("\r\nConnection: close\r\n"));
  }
  CHECK(model.recordedLines().empty());

  // HTTP/1.2 is served as HTTP/1.1: forwarded, kept alive, Host required.
  RawSocket socket(agent.port());
  REQUIRE(socket.send("POST /echo HTTP/1.2\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
  std::string answer =
      socket.readUntil([](const std::string& s) { return hasCompleteResponses(s, 1); });
  CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 200 OK\r\n") && Catch::EndsWith("\r\n\r\nhello"));
  CHECK(headOf(answer).find("Connection:") == std::string::npos);
  REQUIRE(socket.send("GET /echo?size=3&chunked=1 HTTP/1.2\r\nHost: x\r\n\r\n"));
  std::string chunked =
      socket.readUntil([](const std::string& s) { return hasCompleteResponses(s, 1); });
  CHECK_THAT(headOf(chunked), Catch::Contains("\r\nTransfer-Encoding: chunked\r\n"));
  REQUIRE(model.recordedLines().size() == 2);
  CHECK(json::parse(model.recordedLines()[0])["path"] == "/echo");
  REQUIRE(socket.send("GET /echo HTTP/1.2\r\n\r\n"));
  CHECK_THAT(socket.readAll(5s), Catch::StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  CHECK(model.recordedLines().size() == 2);
}

TEST_CASE("the whole metrics page reads cleanly with the Prometheus client's parser",
          "[compat][metrics]") {
  ModelServer model;
  // Every module on, so that every family is on the page: the puller with one model, the
  // batcher, and the logger pointed at a sink that is not there (its events fail and, with one
  // attempt each, are dropped).
  std::string source = makeTempDir("model-source");
  writeFile(source + "/model.bin", "weights");
  std::string configDir = makeTempDir("configs");
  writeFile(configDir + "/models.json", R"([{"modelName":"m1","modelSpec":{"storageUri":")" +
                                            source +
                                            R"(","framework":"sklearn","memory":"1Mi"}}])");
  uint16_t metricsPort = freePort();
  Agent agent(model.port(), {"--enable-puller", "--config-dir", configDir, "--model-dir",
                             makeTempDir("models"), "--enable-batcher", "--max-latency", "5",
                             "--log-url", "http://127.0.0.1:" + std::to_string(freePort()) + "/",
                             "--log-retries", "1", "--metrics-port", std::to_string(metricsPort)});
  REQUIRE(waitForPort(metricsPort));
  for (int i = 0; i < 3; ++i) {
    CHECK(httpRequest(agent.url("/v1/models/m:predict"),
                      {.method = "POST", .body = R"({"instances":[1]})"})
              .status == 200);
  }
  CHECK(httpRequest(agent.url("/echo?status=404")).status == 404);
  std::string url = "http://127.0.0.1:" + std::to_string(metricsPort) + "/metrics";
  // The puller's download and load, and the failed deliveries, happen beside the requests: wait
  // for their counters.
  json page;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (true) {
    Process check({"/usr/bin/python3", sourcePath("tests/support/check_metrics.py"), url});
    int status = check.wait(30s);
    std::string output = check.output();
    INFO(output);
    REQUIRE(status == 0);
    page = json::parse(output);
    bool settled = page["families"].contains("kserve_agent_puller_operations") &&
                   page["families"].contains("kserve_agent_logger_events_dropped");
    if (settled || std::chrono::steady_clock::now() > deadline) {
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  INFO(page.dump(1));
  CHECK(page["problems"] == json::array());
  const json& families = page["families"];
  // Counters are read as counters, named without _total by the parser (as OpenMetrics names
  // them); the upstream connections opened are one of them now.
  for (const char* counter :
       {"kserve_agent_requests", "kserve_agent_upstream_connections_opened",
        "kserve_agent_batcher_batches", "kserve_agent_batcher_flushes",
        "kserve_agent_logger_events_sent", "kserve_agent_logger_events_retried",
        "kserve_agent_logger_events_dropped", "kserve_agent_puller_operations",
        "kserve_agent_puller_retries"}) {
    INFO(counter);
    REQUIRE(families.contains(counter));
    CHECK(families[counter]["type"] == "counter");
  }
  for (const char* gauge :
       {"kserve_agent_client_connections", "kserve_agent_requests_in_flight",
        "kserve_agent_upstream_connections", "kserve_agent_upstream_idle_connections",
        "kserve_agent_logger_queue_events", "kserve_agent_logger_queue_bytes"}) {
    INFO(gauge);
    REQUIRE(families.contains(gauge));
    CHECK(families[gauge]["type"] == "gauge");
  }
  for (const char* histogram :
       {"kserve_agent_request_duration_seconds", "kserve_agent_batcher_batch_size"}) {
    INFO(histogram);
    REQUIRE(families.contains(histogram));
    CHECK(families[histogram]["type"] == "histogram");
  }
  CHECK_FALSE(families.contains("kserve_agent_upstream_connections_created"));
  const json& opened = families["kserve_agent_upstream_connections_opened"]["samples"];
  REQUIRE(opened.size() == 1);
  CHECK(opened[0]["name"] == "kserve_agent_upstream_connections_opened_total");
  CHECK(opened[0]["value"].get<double>() >= 1);
  // A counter never goes down between scrapes, and it counts new connections.
  double before = opened[0]["value"].get<double>();
  RawSocket client(agent.port());
  REQUIRE(client.send("GET /item HTTP/1.1\r\nHost: x\r\n\r\n"));
  client.readUntil([](const std::string& s) { return countResponses(s) == 1; });
  Process again({"/usr/bin/python3", sourcePath("tests/support/check_metrics.py"), url});
  REQUIRE(again.wait(30s) == 0);
  json after = json::parse(again.output());
  CHECK(after["families"]["kserve_agent_upstream_connections_opened"]["samples"][0]["value"]
            .get<double>() >= before);
}
