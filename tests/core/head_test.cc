#include "core/http/head.h"

#include <catch2/catch.hpp>

using namespace core;

TEST_CASE("header lookup is case-insensitive and set/remove replace every copy", "[core][http]") {
  Headers headers = {{"Content-Type", "a"}, {"X-Dup", "1"}, {"x-dup", "2"}};
  REQUIRE(findHeader(headers, "content-type") != nullptr);
  CHECK(*findHeader(headers, "CONTENT-TYPE") == "a");
  CHECK(findHeader(headers, "missing") == nullptr);
  setHeader(headers, "X-DUP", "3");
  CHECK(headers.size() == 2);
  CHECK(*findHeader(headers, "x-dup") == "3");
  CHECK(removeHeader(headers, "content-type") == 1);
  CHECK(headers.size() == 1);
}

TEST_CASE("header tokens match within comma lists", "[core][http]") {
  CHECK(headerHasToken("keep-alive, Upgrade", "upgrade"));
  CHECK(headerHasToken(" trailers ", "trailers"));
  CHECK_FALSE(headerHasToken("upgrades", "upgrade"));
  CHECK_FALSE(headerHasToken("", "x"));
}

TEST_CASE("the last chunk carries the trailers that may be relayed", "[core][http]") {
  std::string out;
  appendLastChunk(out, {});
  CHECK(out == "0\r\n\r\n");
  out.clear();
  appendLastChunk(out, {{"X-Checksum", "abc"},
                        {"content-length", "5"},
                        {"Transfer-Encoding", "chunked"},
                        {"Host", "evil"},
                        {"Authorization", "x"},
                        {"Content-Type", "text/plain"},
                        {"Grpc-Status", "0"}});
  CHECK(out == "0\r\nX-Checksum: abc\r\nGrpc-Status: 0\r\n\r\n");
}

TEST_CASE("hop-by-hop header names", "[core][http]") {
  for (const char* name :
       {"Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding",
        "Upgrade", "Proxy-Authorization", "PROXY-AUTHENTICATE", "te"}) {
    CHECK(isHopByHopHeader(name));
  }
  // Same lengths as hop-by-hop names, and near misses.
  for (const char* name : {"Content-Length", "Authorization", "Host", "Ce-Id", "tf", "Trailers",
                           "Upgradx", "connectiom", "Keep-Alivf", "Transfer-Encodinh", "X"}) {
    CHECK_FALSE(isHopByHopHeader(name));
  }
}

TEST_CASE("case-insensitive comparison", "[core][http]") {
  CHECK(iequals("Content-Length", "content-LENGTH"));
  CHECK(iequals("", ""));
  CHECK_FALSE(iequals("Content-Length", "Content-Lengt"));
  CHECK_FALSE(iequals("a-b", "a_b"));
  // Only ASCII letters fold: '[' and '{' are not a case pair.
  CHECK_FALSE(iequals("[", "{"));
}

TEST_CASE("Connection options name the headers to drop, keep-alive left out", "[core][http]") {
  Headers headers = {{"Connection", "keep-alive"}, {"Host", "x"}};
  CHECK(connectionOptions(headers).empty());
  headers.push_back({"connection", " X-Private ,, Keep-Alive, close"});
  CHECK(connectionOptions(headers) == std::vector<std::string>{"X-Private", "close"});
}

TEST_CASE("comma-separated items are trimmed, empty ones skipped, and visiting can stop",
          "[core][http]") {
  CHECK(splitList(" a ,,b\t, ") == std::vector<std::string_view>{"a", "b"});
  std::vector<std::string_view> seen;
  bool stopped = forEachListItem("x, y, z", [&](std::string_view item) {
    seen.push_back(item);
    return item == "y";
  });
  CHECK(stopped);
  CHECK(seen == std::vector<std::string_view>{"x", "y"});
}

TEST_CASE("scratch strings hand their capacity on, nested ones get their own", "[core][http]") {
  const char* reused = nullptr;
  {
    ScratchString first;
    first->assign(1000, 'a');
    reused = first->data();
  }
  ScratchString second;
  CHECK(second->empty());
  CHECK(second->capacity() >= 1000);
  CHECK(second->data() == reused);
  ScratchString nested;
  CHECK(nested->data() != second->data());
  second->append("kept");
  CHECK(*second == "kept");
}

TEST_CASE("request path drops the query", "[core][http]") {
  RequestHead head;
  head.target = "/v1/models/m:predict?x=1";
  CHECK(head.path() == "/v1/models/m:predict");
  head.target = "/plain";
  CHECK(head.path() == "/plain");
}

TEST_CASE("reason phrases", "[core][http]") {
  CHECK(reasonPhrase(200) == "OK");
  CHECK(reasonPhrase(431) == "Request Header Fields Too Large");
  CHECK(reasonPhrase(799) == "Unknown");
}

TEST_CASE("header names are canonicalised as Go's textproto does", "[core][http]") {
  CHECK(goCanonicalHeaderName("x-request-id") == "X-Request-Id");
  CHECK(goCanonicalHeaderName("FOO") == "Foo");
  CHECK(goCanonicalHeaderName("x-b3-traceid") == "X-B3-Traceid");
  CHECK(goCanonicalHeaderName("TRACEPARENT") == "Traceparent");
  CHECK(goCanonicalHeaderName("content-TYPE") == "Content-Type");
  CHECK(goCanonicalHeaderName("a--b") == "A--B");
  // A name Go cannot canonicalise stays as it is.
  CHECK(goCanonicalHeaderName("bad name") == "bad name");
  CHECK(goCanonicalHeaderName("x:y") == "x:y");
  CHECK(isTokenChar('~'));
  CHECK_FALSE(isTokenChar('('));
}
