#include "core/http/url.h"

#include <catch2/catch.hpp>

using namespace core;

TEST_CASE("http(s) URLs split into scheme, authority, host, port and target", "[core][url]") {
  auto parts = splitHttpUrl("HTTPS://user:pw@example.com:8443/v1/models/m:predict?x=1#frag");
  REQUIRE(parts);
  CHECK(parts->https);
  CHECK(parts->userInfo == "user:pw");
  CHECK(parts->authority == "example.com:8443");
  CHECK(parts->host == "example.com");
  CHECK(parts->port == 8443);
  CHECK(parts->target == "/v1/models/m:predict?x=1");

  auto plain = splitHttpUrl("http://sink");
  REQUIRE(plain);
  CHECK_FALSE(plain->https);
  CHECK_FALSE(plain->userInfo);
  CHECK(plain->host == "sink");
  CHECK(plain->port == 0);
  CHECK(plain->target.empty());

  auto query = splitHttpUrl("http://h:1?q");
  REQUIRE(query);
  CHECK(query->port == 1);
  CHECK(query->target == "?q");
}

TEST_CASE("IPv6 literals keep their brackets in the authority only", "[core][url]") {
  auto parts = splitHttpUrl("http://[::1]:9000/x");
  REQUIRE(parts);
  CHECK(parts->host == "::1");
  CHECK(parts->authority == "[::1]:9000");
  CHECK(parts->port == 9000);
  auto noPort = splitHttpUrl("http://[fe80::1]/");
  REQUIRE(noPort);
  CHECK(noPort->host == "fe80::1");
  CHECK(noPort->port == 0);
}

TEST_CASE("unusable URLs say why", "[core][url]") {
  CHECK(httpUrlProblem("ftp://x/") == "expected an http(s) URL");
  CHECK(httpUrlProblem("example.com/x") == "expected an http(s) URL");
  CHECK(httpUrlProblem("http:///x") == "no host");
  CHECK(httpUrlProblem("http://[::1/x") == "the IPv6 address is not closed with ]");
  CHECK(httpUrlProblem("http://[::1]x/") == "unexpected text after the IPv6 address");
  CHECK(httpUrlProblem("http://h:0/") == "the port must be a number from 1 to 65535");
  CHECK(httpUrlProblem("http://h:65536/") == "the port must be a number from 1 to 65535");
  CHECK(httpUrlProblem("http://h:8x/") == "the port must be a number from 1 to 65535");
  CHECK(httpUrlProblem("http://h:8080/ok").empty());
}
