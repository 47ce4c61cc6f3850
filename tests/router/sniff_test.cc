#include "router/sniff.h"

#include <catch2/catch.hpp>

using router::detectContentType;

TEST_CASE("content types as Go's http.DetectContentType gives them", "[router][sniff]") {
  using namespace std::string_literals;
  CHECK(detectContentType("plain text") == "text/plain; charset=utf-8");
  CHECK(detectContentType("  <!DOCTYPE html><html>") == "text/html; charset=utf-8");
  CHECK(detectContentType("<HTML>") == "text/html; charset=utf-8");
  CHECK(detectContentType("<p>para</p>") == "text/html; charset=utf-8");
  // A tag must end with a space or '>' to count.
  CHECK(detectContentType("<pre") == "text/plain; charset=utf-8");
  CHECK(detectContentType("<?xml version=\"1.0\"?>") == "text/xml; charset=utf-8");
  CHECK(detectContentType("%PDF-1.4") == "application/pdf");
  CHECK(detectContentType("\x89PNG\x0D\x0A\x1A\x0A....") == "image/png");
  CHECK(detectContentType("\xFF\xD8\xFF\xE0") == "image/jpeg");
  CHECK(detectContentType("GIF89a...") == "image/gif");
  CHECK(detectContentType("\x1F\x8B\x08\x00"s) == "application/x-gzip");
  CHECK(detectContentType("PK\x03\x04rest") == "application/zip");
  CHECK(detectContentType("\xEF\xBB\xBFtext") == "text/plain; charset=utf-8");
  CHECK(detectContentType("\x01\x02\x03") == "application/octet-stream");
  CHECK(detectContentType("text with a \x00 byte"s) == "application/octet-stream");
  // Only the first 512 bytes decide.
  CHECK(detectContentType(std::string(600, 'a') + "\x01") == "text/plain; charset=utf-8");
}
