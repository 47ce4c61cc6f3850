#include "logger/cloudevent.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <regex>
#include <set>

using namespace std::chrono;
using logger::EventKind;

namespace {

system_clock::time_point at(long long seconds, long long nanos = 0) {
  return system_clock::time_point(
      duration_cast<system_clock::duration>(std::chrono::seconds(seconds) + nanoseconds(nanos)));
}

std::string rfc3339(system_clock::time_point time) {
  static logger::DateCache dates;
  std::string out;
  logger::appendRfc3339Nano(out, time, dates);
  return out;
}

std::string headerValue(const core::Headers& headers, const std::string& name) {
  const std::string* value = core::findHeader(headers, name);
  return value == nullptr ? "<absent>" : *value;
}

}  // namespace

TEST_CASE("RFC 3339 times are UTC with trailing zeros of the fraction trimmed", "[logger]") {
  CHECK(rfc3339(at(0)) == "1970-01-01T00:00:00Z");
  CHECK(rfc3339(at(1714564800, 123456789)) == "2024-05-01T12:00:00.123456789Z");
  CHECK(rfc3339(at(1714564800, 120000000)) == "2024-05-01T12:00:00.12Z");
  CHECK(rfc3339(at(1714564800, 1000)) == "2024-05-01T12:00:00.000001Z");
  CHECK(rfc3339(at(951782400)) == "2000-02-29T00:00:00Z");
}

TEST_CASE("UUIDv4 ids are lowercase, versioned and unique", "[logger]") {
  std::regex shape("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id;
    logger::appendRandomUuid(id);
    REQUIRE(std::regex_match(id, shape));
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("JSON strings are escaped as Go's encoding/json does", "[logger]") {
  CHECK(logger::jsonString("plain") == "\"plain\"");
  CHECK(logger::jsonString("<a&b>") == "\"\\u003ca\\u0026b\\u003e\"");
  CHECK(logger::jsonString("q\"b\\") == "\"q\\\"b\\\\\"");
  CHECK(logger::jsonString("\n\t\x01") == "\"\\n\\t\\u0001\"");
  CHECK(logger::jsonString("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
  CHECK(logger::jsonString("bad\xff") == "\"bad\\ufffd\"");
  CHECK(logger::jsonString("\xe2\x80\xa8") == "\"\\u2028\"");
}

TEST_CASE("Metadata is JSON with sorted keys and every value", "[logger]") {
  CHECK(logger::metadataJson({}) == "{}");
  logger::Metadata metadata{{"X-Request-Id", {"a", "b"}}, {"Foo", {"bar"}}};
  CHECK(logger::metadataJson(metadata) == R"({"Foo":["bar"],"X-Request-Id":["a","b"]})");
}

TEST_CASE("Annotations split at the first '=' and are absent when none", "[logger]") {
  CHECK(logger::annotationsJson({}).empty());
  CHECK(logger::annotationsJson({"b=2", "a=x=y", "b=3"}) == R"({"a":"x=y","b":"3"})");
  CHECK(logger::annotationsJson({"empty="}) == R"({"empty":""})");
}

TEST_CASE("Metadata headers match case-insensitively and keep Go-canonical names", "[logger]") {
  core::Headers request{
      {"x-request-id", "r1"}, {"Foo", "bar"}, {"X-Request-ID", "r2"}, {"Other", "no"}};
  auto metadata = logger::collectMetadata(request, {"X-Request-Id", "foo", "Missing"});
  CHECK(logger::metadataJson(metadata) == R"({"Foo":["bar"],"X-Request-Id":["r1","r2"]})");
  CHECK(logger::collectMetadata(request, {}).empty());
}

TEST_CASE("The event id comes from Ce-Id, else a new UUID", "[logger]") {
  auto eventId = [](const core::Headers& headers) {
    std::string id = "an id from an earlier exchange, replaced whole";
    logger::assignEventId(id, headers);
    return id;
  };
  CHECK(eventId({{"ce-id", " abc-123 "}}) == "abc-123");
  std::string id;
  CHECK(logger::assignEventId(id, {{"ce-id", " abc-123 "}}));
  CHECK_FALSE(logger::assignEventId(id, {{"Ce-Id", "   "}}));
  std::string generated = eventId({{"Ce-Id", "   "}});
  CHECK(generated.size() == 36);
  CHECK(eventId({}) != eventId({}));
}

TEST_CASE("A copied record has every field of the original", "[logger]") {
  logger::Record record;
  record.kind = EventKind::Response;
  record.id = "0009174a-24a8-4603-b098-09c8799950e9";
  record.time = at(1714564800, 5);
  record.recorded = at(1714564801);
  record.contentType = "application/json; charset=utf-8";
  record.metadataJson = logger::metadataJson({{"Foo", {"bar"}}});
  record.statusCode = 503;
  logger::Record copy(record);
  CHECK(copy.kind == record.kind);
  CHECK(copy.id == record.id);
  CHECK(copy.time == record.time);
  CHECK(copy.recorded == record.recorded);
  CHECK(copy.contentType == record.contentType);
  CHECK(copy.metadataJson == record.metadataJson);
  CHECK(copy.statusCode == record.statusCode);
}

TEST_CASE("Request event headers are upstream's, in Go casing", "[logger]") {
  logger::Record record;
  record.kind = EventKind::Request;
  record.id = "id-1";
  record.time = at(1714564800, 5);
  record.recorded = at(1714564801);
  record.contentType = "application/json";
  record.metadataJson = logger::metadataJson({{"Foo", {"bar"}}});
  logger::EventFormat format({"http://localhost:9081/", "isvc", "ns", "predictor", "default", ""});
  auto headers = format.headers(record);
  core::Headers expected{{"Ce-Specversion", "1.0"},
                         {"Ce-Source", "http://localhost:9081/"},
                         {"Ce-Type", "org.kubeflow.serving.inference.request"},
                         {"Ce-Inferenceservicename", "isvc"},
                         {"Ce-Namespace", "ns"},
                         {"Ce-Component", "predictor"},
                         {"Ce-Endpoint", "default"},
                         {"Ce-Id", "id-1"},
                         {"Ce-Time", "2024-05-01T12:00:00.000000005Z"},
                         {"Ce-Recordedtime", "2024-05-01T12:00:01Z"},
                         {"Content-Type", "application/json"},
                         {"Ce-Metadata", R"({"Foo":["bar"]})"}};
  REQUIRE(headers.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    CHECK(headers[i].name == expected[i].name);
    CHECK(headers[i].value == expected[i].value);
  }
}

TEST_CASE("Optional event headers appear only when they have a value", "[logger]") {
  logger::Record record;
  record.kind = EventKind::Response;
  record.id = "id-2";
  logger::EventAttributes attributes{"src", "", "", "", "", ""};
  auto plain = logger::EventFormat(attributes).headers(record);
  CHECK(headerValue(plain, "Ce-Type") == "org.kubeflow.serving.inference.response");
  CHECK(headerValue(plain, "Content-Type") == "<absent>");
  CHECK(headerValue(plain, "Ce-Annotations") == "<absent>");
  CHECK(headerValue(plain, "Ce-Statuscode") == "<absent>");
  CHECK(headerValue(plain, "Ce-Metadata") == "{}");
  CHECK(headerValue(plain, "Ce-Namespace").empty());

  record.statusCode = 503;
  attributes.annotationsJson = logger::annotationsJson({"team=ml"});
  auto full = logger::EventFormat(attributes).headers(record);
  CHECK(headerValue(full, "Ce-Statuscode") == "503");
  CHECK(headerValue(full, "Ce-Annotations") == R"({"team":"ml"})");
}

TEST_CASE("CloudEvents media types are recognised in any case and with parameters", "[logger]") {
  for (const char* type :
       {"application/cloudevents+json", "application/cloudevents-batch+json",
        "application/cloudevents", "APPLICATION/CLOUDEVENTS+JSON", "Application/CloudEvents+Xml",
        "application/cloudevents+json; charset=utf-8",
        "application/cloudevents-batch+json;charset=UTF-8", " application/cloudevents+json ",
        "application/cloudevents+protobuf", "application/cloudeventsx"}) {
    INFO(type);
    CHECK(logger::isCloudEventsMediaType(type));
  }
  for (const char* type :
       {"", "application/json", "application/octet-stream", "text/cloudevents+json",
        "application/cloudevent+json", "application/json; profile=application/cloudevents+json",
        "application/x-cloudevents+json"}) {
    INFO(type);
    CHECK_FALSE(logger::isCloudEventsMediaType(type));
  }
}

TEST_CASE("A CloudEvents Content-Type is sent as application/octet-stream, kept in an extension",
          "[logger]") {
  logger::Record record;
  record.id = "id-3";
  logger::EventFormat format({"src", "isvc", "ns", "", "", ""});
  record.contentType = "Application/CloudEvents-Batch+JSON; charset=\"utf-8\"";
  auto headers = format.headers(record);
  CHECK(headerValue(headers, "Content-Type") == "application/octet-stream");
  // CloudEvents HTTP binding §3.1.3.2: space, '"' and '%' percent-encoded.
  CHECK(headerValue(headers, "Ce-Originalcontenttype") ==
        "Application/CloudEvents-Batch+JSON;%20charset=%22utf-8%22");
  // The agent's own attributes are untouched, and there is one Content-Type only.
  CHECK(headerValue(headers, "Ce-Id") == "id-3");
  CHECK(headerValue(headers, "Ce-Source") == "src");
  CHECK(headerValue(headers, "Ce-Inferenceservicename") == "isvc");
  CHECK(std::count_if(headers.begin(), headers.end(), [](const core::Header& h) {
          return core::iequals(h.name, "Content-Type");
        }) == 1);

  record.contentType = "application/json";
  auto plain = format.headers(record);
  CHECK(headerValue(plain, "Content-Type") == "application/json");
  CHECK(headerValue(plain, "Ce-Originalcontenttype") == "<absent>");
}

TEST_CASE("Attribute values are percent-encoded as the CloudEvents HTTP binding says", "[logger]") {
  std::string out;
  logger::appendPercentEncoded(out, std::string("a b\"c%d\x7f\x01\xc3\xa9~!", 13));
  CHECK(out == "a%20b%22c%25d%7F%01%C3%A9~!");
}
