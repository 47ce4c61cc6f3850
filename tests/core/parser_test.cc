#include "core/http/parser.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <functional>
#include <memory>

using namespace core;

namespace {

// Records what the parser reports.
struct Recorder : HttpParser::Delegate {
  std::vector<RequestHead> requests;
  std::vector<ResponseHead> responses;
  std::string body;
  int completed = 0;
  std::vector<Headers> trailers;  // of each message, when it completed
  bool pauseAfterMessage = false;
  bool noBody = false;
  HttpParser* parser = nullptr;

  bool onParsedHead() override {
    requests.push_back(parser->request());
    responses.push_back(parser->response());
    return noBody;
  }
  void onParsedBody(const char* data, size_t length) override { body.append(data, length); }
  bool onParsedMessageComplete() override {
    ++completed;
    trailers.push_back(parser->trailers());
    return pauseAfterMessage;
  }
};

// Parses `wire` as a request; the recorder when it was refused with 400, else nullptr.
std::unique_ptr<Recorder> refused(const char* wire) {
  auto recorder = std::make_unique<Recorder>();
  HttpParser parser(HTTP_REQUEST, *recorder);
  recorder->parser = &parser;
  auto result = parser.execute(wire, std::strlen(wire));
  INFO(wire);
  CHECK(result.status == HttpParser::Status::Error);
  CHECK(result.errorStatus == 400);
  recorder->parser = nullptr;
  if (result.status != HttpParser::Status::Error || result.errorStatus != 400) return nullptr;
  return recorder;
}

// Parses `wire` in two reads, split at every byte in turn; both must succeed, then `check` looks
// at what was recorded.
void parseSplitEverywhere(const std::string& wire,
                          const std::function<void(Recorder&, HttpParser&)>& check) {
  for (size_t split = 1; split < wire.size(); ++split) {
    Recorder r;
    HttpParser parser(HTTP_REQUEST, r);
    r.parser = &parser;
    auto first = parser.execute(wire.data(), split);
    auto second = parser.execute(wire.data() + split, wire.size() - split);
    INFO("split at " << split);
    REQUIRE(first.status == HttpParser::Status::Ok);
    REQUIRE(second.status == HttpParser::Status::Ok);
    check(r, parser);
  }
}

}  // namespace

TEST_CASE("a request split at every byte parses the same", "[agent][parser]") {
  std::string wire =
      "POST /v1/models/m:predict?q=1 HTTP/1.1\r\nHost: h\r\nX-Long: abcdefghij\r\n"
      "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
  parseSplitEverywhere(wire, [](Recorder& r, HttpParser&) {
    REQUIRE(r.requests.size() == 1);
    CHECK(r.requests[0].method == "POST");
    CHECK(r.requests[0].target == "/v1/models/m:predict?q=1");
    CHECK(r.requests[0].headers.size() == 3);
    CHECK(*findHeader(r.requests[0].headers, "x-long") == "abcdefghij");
    CHECK(r.body == "hello world");
    CHECK(r.completed == 1);
  });
}

TEST_CASE("pausing after a message leaves pipelined bytes unconsumed", "[agent][parser]") {
  std::string wire = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  Recorder r;
  r.pauseAfterMessage = true;
  HttpParser parser(HTTP_REQUEST, r);
  r.parser = &parser;
  auto result = parser.execute(wire.data(), wire.size());
  REQUIRE(result.status == HttpParser::Status::Paused);
  CHECK(result.consumed == wire.find("GET /b"));
  parser.resume();
  auto rest = parser.execute(wire.data() + result.consumed, wire.size() - result.consumed);
  CHECK(rest.status == HttpParser::Status::Paused);
  REQUIRE(r.requests.size() == 2);
  CHECK(r.requests[1].target == "/b");
}

TEST_CASE("the bytes left of a Content-Length body count down across reads", "[agent][parser]") {
  Recorder r;
  HttpParser parser(HTTP_REQUEST, r);
  r.parser = &parser;
  CHECK(parser.bodyBytesLeft() == 0);
  std::string head = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n";
  REQUIRE(parser.execute((head + "abc").data(), head.size() + 3).status == HttpParser::Status::Ok);
  CHECK(parser.bodyBytesLeft() == 7);
  REQUIRE(parser.execute("defg", 4).status == HttpParser::Status::Ok);
  CHECK(parser.bodyBytesLeft() == 3);
  REQUIRE(parser.execute("hij", 3).status == HttpParser::Status::Ok);
  CHECK(parser.bodyBytesLeft() == 0);
  CHECK(r.body == "abcdefghij");

  std::string chunked = "POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe";
  REQUIRE(parser.execute(chunked.data(), chunked.size()).status == HttpParser::Status::Ok);
  CHECK(parser.bodyBytesLeft() == 0);
}

TEST_CASE("trailer fields are kept apart from the head, split anywhere, per message",
          "[agent][parser]") {
  std::string wire =
      "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
      "3\r\nabc\r\n0\r\nX-Sum: 12 \r\nContent-Length: 5\r\n\r\n"
      "POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
  parseSplitEverywhere(wire, [](Recorder& r, HttpParser& parser) {
    REQUIRE(r.completed == 2);
    REQUIRE(r.requests.size() == 2);
    CHECK(r.requests[0].headers.size() == 3);
    CHECK(r.body == "abc");
    CHECK(r.trailers[0] == Headers{{"X-Sum", "12"}, {"Content-Length", "5"}});
    CHECK(r.trailers[1].empty());
    CHECK(parser.takeTrailers().empty());
  });
}

TEST_CASE("absolute-form targets become origin-form with their authority as Host",
          "[agent][parser]") {
  struct Case {
    const char* wire;
    const char* target;
    const char* host;
  };
  for (const Case& c : {Case{"GET http://Example.test:81/a/b?c=d HTTP/1.1\r\nHost: other\r\n\r\n",
                             "/a/b?c=d", "Example.test:81"},
                        Case{"GET HTTP://h HTTP/1.1\r\nHost: h\r\n\r\n", "/", "h"},
                        Case{"GET http://[::1]:9?q HTTP/1.1\r\nHost: x\r\n\r\n", "/?q", "[::1]:9"},
                        Case{"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", "*", "h"},
                        Case{"GET /plain HTTP/1.1\r\nHost: h\r\n\r\n", "/plain", "h"}}) {
    INFO(c.wire);
    Recorder r;
    HttpParser parser(HTTP_REQUEST, r);
    r.parser = &parser;
    auto result = parser.execute(c.wire, std::strlen(c.wire));
    REQUIRE(result.status == HttpParser::Status::Ok);
    REQUIRE(r.requests.size() == 1);
    CHECK(r.requests[0].target == c.target);
    REQUIRE(r.requests[0].headers.size() == 1);
    CHECK(r.requests[0].headers[0].value == c.host);
  }
  for (const char* wire : {"GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n",
                           "GET ftp://h/x HTTP/1.1\r\nHost: h\r\n\r\n",
                           "GET http://h:0/ HTTP/1.1\r\nHost: h\r\n\r\n"}) {
    auto r = refused(wire);
    REQUIRE(r);
    CHECK(r->requests.empty());
  }
}

TEST_CASE("request smuggling forms are errors", "[agent][parser]") {
  const char* cases[] = {
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
      "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
      "GET / HTTP/1.1\nHost: h\n\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
  };
  for (const char* wire : cases)
    CHECK(refused(wire) != nullptr);
}

TEST_CASE("heads with unknowable framing or a bad Host never reach the delegate",
          "[agent][parser]") {
  const char* cases[] = {
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nContent-Length: 1\r\n\r\nx",
      "GET / HTTP/1.1\r\nX: y\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n",
      // Served as HTTP/1.1, HTTP/1.2 must send Host as HTTP/1.1 does.
      "GET / HTTP/1.2\r\n\r\n",
  };
  for (const char* wire : cases) {
    auto recorder = refused(wire);
    REQUIRE(recorder != nullptr);
    CHECK(recorder->requests.empty());
  }
}

TEST_CASE("HTTP/1.0 may leave Host out", "[agent][parser]") {
  Recorder r;
  HttpParser parser(HTTP_REQUEST, r);
  r.parser = &parser;
  std::string wire = "GET / HTTP/1.0\r\n\r\n";
  CHECK(parser.execute(wire.data(), wire.size()).status == HttpParser::Status::Ok);
  CHECK(r.completed == 1);
}

TEST_CASE("request-line versions are taken as Go's server takes them", "[agent][parser]") {
  struct Case {
    std::string version;
    HttpParser::Status status;
    int errorStatus;   // when refused
    int versionMinor;  // when parsed
    bool keepAlive;    // when parsed, without a Connection field
  };
  // RFC 9112 §2.3: HTTP/1.x with a minor version the server does not know is served as the
  // highest 1.x it knows; another major version is not supported (505); anything that is not
  // "HTTP/" DIGIT "." DIGIT is malformed (400).
  const std::vector<Case> cases = {
      {"HTTP/1.1", HttpParser::Status::Ok, 0, 1, true},
      {"HTTP/1.0", HttpParser::Status::Ok, 0, 0, false},
      {"HTTP/1.2", HttpParser::Status::Ok, 0, 1, true},
      {"HTTP/1.9", HttpParser::Status::Ok, 0, 1, true},
      {"HTTP/2.0", HttpParser::Status::Error, 505, 0, false},
      {"HTTP/0.9", HttpParser::Status::Error, 505, 0, false},
      {"HTTP/3.0", HttpParser::Status::Error, 505, 0, false},
      {"HTTP/9.9", HttpParser::Status::Error, 505, 0, false},
      {"HTTP/1.10", HttpParser::Status::Error, 400, 0, false},
      {"HTTP/11.1", HttpParser::Status::Error, 400, 0, false},
      {"HTTP/1", HttpParser::Status::Error, 400, 0, false},
      {"HTTP/1.", HttpParser::Status::Error, 400, 0, false},
      {"HTTP/a.1", HttpParser::Status::Error, 400, 0, false},
      {"http/1.1", HttpParser::Status::Error, 400, 0, false},
  };
  for (const auto& c : cases) {
    Recorder r;
    HttpParser parser(HTTP_REQUEST, r);
    r.parser = &parser;
    std::string wire = "GET /x " + c.version + "\r\nHost: h\r\n\r\n";
    auto result = parser.execute(wire.data(), wire.size());
    INFO(c.version << ": " << result.reason);
    REQUIRE(result.status == c.status);
    if (c.status == HttpParser::Status::Error) {
      CHECK(result.errorStatus == c.errorStatus);
      CHECK(r.requests.empty());
      if (c.errorStatus == 505) CHECK_THAT(result.reason, Catch::Contains(c.version));
      continue;
    }
    REQUIRE(r.requests.size() == 1);
    CHECK(r.requests[0].versionMinor == c.versionMinor);
    CHECK(parser.keepAlive() == c.keepAlive);
  }
}

TEST_CASE("a version refused with 505 stays refused whatever follows", "[agent][parser]") {
  Recorder r;
  HttpParser parser(HTTP_REQUEST, r);
  r.parser = &parser;
  std::string first = "GET / HTTP/2.0\r\n";
  CHECK(parser.execute(first.data(), first.size()).errorStatus == 505);
  std::string rest = "Host: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
  auto result = parser.execute(rest.data(), rest.size());
  CHECK(result.status == HttpParser::Status::Error);
  CHECK(result.errorStatus == 505);
  CHECK(r.requests.empty());
}

TEST_CASE("header limits answer 431", "[agent][parser]") {
  Recorder r;
  HttpParser parser(HTTP_REQUEST, r, ParserLimits{100, 3});
  r.parser = &parser;
  std::string tooMany = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
  auto result = parser.execute(tooMany.data(), tooMany.size());
  CHECK(result.status == HttpParser::Status::Error);
  CHECK(result.errorStatus == 431);

  Recorder r2;
  HttpParser parser2(HTTP_REQUEST, r2, ParserLimits{100, 100});
  r2.parser = &parser2;
  std::string tooBig = "GET / HTTP/1.1\r\nA: " + std::string(200, 'x') + "\r\n\r\n";
  result = parser2.execute(tooBig.data(), tooBig.size());
  CHECK(result.status == HttpParser::Status::Error);
  CHECK(result.errorStatus == 431);
}

TEST_CASE("responses: content length, close-delimited bodies, HEAD answers", "[agent][parser]") {
  SECTION("close-delimited body ends with finish()") {
    Recorder r;
    HttpParser parser(HTTP_RESPONSE, r);
    r.parser = &parser;
    std::string wire = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome bytes";
    CHECK(parser.execute(wire.data(), wire.size()).status == HttpParser::Status::Ok);
    CHECK(r.completed == 0);
    CHECK(parser.finish().status == HttpParser::Status::Ok);
    CHECK(r.completed == 1);
    CHECK(r.body == "some bytes");
    CHECK_FALSE(parser.keepAlive());
  }
  SECTION("a HEAD answer has no body whatever its Content-Length") {
    Recorder r;
    r.noBody = true;
    HttpParser parser(HTTP_RESPONSE, r);
    r.parser = &parser;
    std::string wire =
        "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
    CHECK(parser.execute(wire.data(), wire.size()).status == HttpParser::Status::Ok);
    CHECK(r.completed == 2);
    CHECK(r.responses[0].status == 200);
    CHECK(parser.contentLength().value_or(0) == 0);
  }
}

TEST_CASE("upgrade requests stop at the head", "[agent][parser]") {
  Recorder r;
  HttpParser parser(HTTP_REQUEST, r);
  r.parser = &parser;
  std::string wire =
      "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nRAW";
  auto result = parser.execute(wire.data(), wire.size());
  CHECK(result.status == HttpParser::Status::Upgrade);
  CHECK(wire.substr(result.consumed) == "RAW");
  CHECK(parser.upgrade());
}

TEST_CASE("head violations are caught when split across reads", "[agent][parser]") {
  struct Case {
    std::string first;
    std::string second;
    std::string reason;
  };
  std::vector<Case> cases = {
      {"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n", " b\r\n\r\n", "folding"},
      {"GET /x HTTP/1.1\n", "Host: x\r\n\r\n", "bare LF"},
      {"GET /x HTTP/1.1\r\nHost: x\r\n", "\n", "bare LF"},
      {"GET /x HTTP/1.1\r", "Host: x\r\n\r\n", "CR without LF"},
      {"GET / HTTP/1.1\r\nHost: x\r\n", ": x\r\n\r\n", "empty header name"},
  };
  for (const auto& c : cases) {
    Recorder r;
    HttpParser parser(HTTP_REQUEST, r);
    r.parser = &parser;
    auto first = parser.execute(c.first.data(), c.first.size());
    auto result = first.status == HttpParser::Status::Error
                      ? first
                      : parser.execute(c.second.data(), c.second.size());
    INFO(c.first << "|" << c.second);
    CHECK(result.status == HttpParser::Status::Error);
    CHECK(result.errorStatus == 400);
    CHECK_THAT(result.reason, Catch::Contains(c.reason));
    CHECK(r.requests.empty());
  }
}

TEST_CASE("bodies may hold any bytes, only heads are checked", "[agent][parser]") {
  std::string wire =
      "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\n\n \r\t\nx"
      "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n\n ";
  Recorder r;
  HttpParser parser(HTTP_REQUEST, r);
  r.parser = &parser;
  auto result = parser.execute(wire.data(), wire.size());
  CHECK(result.status == HttpParser::Status::Ok);
  CHECK(r.completed == 2);
  CHECK(r.body == "\n \r\t\nx\n ");
}
