// The LogRequest record: its JSON as Go's encoding/json writes it (spec/upstream-logger.md §5.5),
// Go's url.URL and time.Time forms, and the decoding of a batch for the embedded marshaller.
#include <catch2/catch.hpp>

#include "logger/blob/record.h"
#include "tests/logger/blob_helpers.h"

using namespace logger::blob;

namespace {

GoUrl url(const std::string& text) {
  GoUrl parsed;
  std::string error;
  INFO(text);
  REQUIRE(GoUrl::parse(text, parsed, error));
  return parsed;
}

std::string urlError(const std::string& text) {
  GoUrl parsed;
  std::string error;
  REQUIRE_FALSE(GoUrl::parse(text, parsed, error));
  return error;
}

std::string json(const LogRequest& record) {
  std::string out;
  appendLogRequestJson(out, record);
  return out;
}

std::string rfc3339(const Timestamp& time) {
  std::string out;
  time.appendRfc3339Nano(out);
  return out;
}

std::vector<LogRequest> decode(const std::string& text) {
  std::vector<LogRequest> batch;
  std::string error;
  INFO(text);
  INFO(error);
  REQUIRE(decodeBatch(text, batch, error));
  return batch;
}

std::string decodeError(const std::string& text) {
  std::vector<LogRequest> batch;
  std::string error;
  INFO(text);
  REQUIRE_FALSE(decodeBatch(text, batch, error));
  REQUIRE(batch.empty());
  return error;
}

}  // namespace

TEST_CASE("a full record is written as Go's json.Marshal writes a LogRequest", "[blob][record]") {
  LogRequest record;
  record.url = url("s3://bucket/logs");
  record.bytes = "{\"a\":1}";
  record.contentType = "application/json";
  record.reqType = "org.kubeflow.serving.inference.request";
  record.id = "0123";
  record.sourceUri = url("http://localhost:9081/");
  record.inferenceService = "isvc";
  record.namespace_ = "ns";
  record.component = "predictor";
  record.endpoint = "default";
  record.metadata["X-Request-Id"] = std::vector<std::string>{"a<b"};
  record.metadata["Accept"] = std::vector<std::string>{"x", "y"};
  record.annotations["k"] = "v&w";
  record.certName = "service-ca.crt";
  record.tlsSkipVerify = true;
  record.occurrenceTime = {1700000000, 123456780, 3600};
  const std::string kUrlTail =
      R"("RawPath":"","OmitHost":false,"ForceQuery":false,"RawQuery":"","Fragment":"","RawFragment":""})";
  CHECK(
      json(record) ==
      R"({"url":{"Scheme":"s3","Opaque":"","User":null,"Host":"bucket","Path":"/logs",)" +
          kUrlTail +
          R"(,"bytes":"eyJhIjoxfQ==","contentType":"application/json",)"
          R"("reqType":"org.kubeflow.serving.inference.request","id":"0123",)"
          R"("sourceUri":{"Scheme":"http","Opaque":"","User":null,"Host":"localhost:9081","Path":"/",)" +
          kUrlTail +
          R"(,"inferenceService":"isvc","namespace":"ns","component":"predictor",)"
          R"("endpoint":"default","metadata":{"Accept":["x","y"],"X-Request-Id":["a\u003cb"]},)"
          R"("annotations":{"k":"v\u0026w"},"certName":"service-ca.crt","tlsSkipVerify":true,)"
          R"("occurrenceTime":"2023-11-14T23:13:20.12345678+01:00"})");
}

TEST_CASE("empty fields are omitted and occurrenceTime is always written", "[blob][record]") {
  CHECK(json(LogRequest{}) == R"({"occurrenceTime":"0001-01-01T00:00:00Z"})");
  LogRequest record;
  record.bytes = "";  // a present, empty payload is "", only an absent one is omitted
  record.metadata["A"] = std::nullopt;
  CHECK(json(record) ==
        R"({"bytes":"","metadata":{"A":null},"occurrenceTime":"0001-01-01T00:00:00Z"})");
}

TEST_CASE("a URL with user info is a struct with an empty User object", "[blob][record]") {
  LogRequest record;
  record.url = url("abfs://container:secret@account/path");
  const std::string text = json(record);
  CHECK(text.find(R"("User":{},"Host":"account","Path":"/path")") != std::string::npos);
  CHECK(text.find("secret") == std::string::npos);
  CHECK(text.find("container") == std::string::npos);
  CHECK(record.url->toString() == "abfs://@account/path");
}

TEST_CASE("strings are escaped as Go's encoder escapes them", "[blob][record]") {
  LogRequest record;
  record.id = std::string("a\"b\\c\n\t\x01<>&\u2028é") + "\xff";
  CHECK(
      json(record) ==
      R"({"id":"a\"b\\c\n\t\u0001\u003c\u003e\u0026\u2028é\ufffd","occurrenceTime":"0001-01-01T00:00:00Z"})");
}

TEST_CASE("an array of records, empty or not", "[blob][record]") {
  std::string out;
  appendBatchJson(out, {});
  CHECK(out == "[]");
  out.clear();
  appendBatchJson(out, {LogRequest{}, LogRequest{}});
  CHECK(out ==
        R"([{"occurrenceTime":"0001-01-01T00:00:00Z"},{"occurrenceTime":"0001-01-01T00:00:00Z"}])");
}

TEST_CASE("times are RFC 3339 with trimmed nanoseconds and the zone offset", "[blob][record]") {
  CHECK(rfc3339({0, 0, 0}) == "1970-01-01T00:00:00Z");
  CHECK(rfc3339({0, 500000000, 0}) == "1970-01-01T00:00:00.5Z");
  CHECK(rfc3339({-1, 999999999, 0}) == "1969-12-31T23:59:59.999999999Z");
  CHECK(rfc3339({951782400, 1000, -7 * 3600}) == "2000-02-28T17:00:00.000001-07:00");
  CHECK(rfc3339({1709164800, 0, 5 * 3600 + 30 * 60}) == "2024-02-29T05:30:00+05:30");
  CHECK(rfc3339({253402300799, 0, 0}) == "9999-12-31T23:59:59Z");
  CHECK(rfc3339(Timestamp{}) == "0001-01-01T00:00:00Z");
}

TEST_CASE("the current time carries the local zone's offset", "[blob][record]") {
  const Timestamp now = Timestamp::now();
  std::tm local{};
  const time_t seconds = now.seconds;
  localtime_r(&seconds, &local);
  CHECK(now.offsetSeconds == local.tm_gmtoff / 60 * 60);
  CHECK(now.seconds > 1700000000);
  const std::string text = rfc3339(now);
  Timestamp back;
  REQUIRE(Timestamp::parseRfc3339(text, back));
  CHECK(back == now);
}

TEST_CASE("RFC 3339 times parse strictly, as Go's time.Time decodes them", "[blob][record]") {
  Timestamp time;
  REQUIRE(Timestamp::parseRfc3339("2024-02-29T12:00:00.100Z", time));
  CHECK(rfc3339(time) == "2024-02-29T12:00:00.1Z");
  REQUIRE(Timestamp::parseRfc3339("2006-01-02T15:04:05.123456789123-07:00", time));
  CHECK(time.nanos == 123456789);
  CHECK(time.offsetSeconds == -7 * 3600);
  CHECK(rfc3339(time) == "2006-01-02T15:04:05.123456789-07:00");
  REQUIRE(Timestamp::parseRfc3339("0001-01-01T00:00:00Z", time));
  CHECK(time == Timestamp{});
  for (const char* bad :
       {"2006-01-02 15:04:05Z", "2006-13-02T15:04:05Z", "2006-02-29T15:04:05Z",
        "2006-01-02T24:00:00Z", "2006-01-02T23:60:00Z", "2006-01-02T23:59:60Z",
        "2006-01-02T15:04:05", "2006-01-02T15:04:05.Z", "2006-01-02T15:04:05Z ",
        "2006-01-02T15:04:05+24:00", "2006-01-02T15:04:05+01:60", "2006-01-02T15:04:05+0100",
        "2006-01-02T5:04:05Z", "06-01-02T15:04:05Z", ""}) {
    INFO(bad);
    CHECK_FALSE(Timestamp::parseRfc3339(bad, time));
  }
}

TEST_CASE("URLs parse and print as Go's net/url does", "[blob][record]") {
  struct Case {
    const char* text;
    const char* printed;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"s3://bucket/logs", "s3://bucket/logs"},
           {"sklearn-iris-predictor-7d9f", "sklearn-iris-predictor-7d9f"},
           {"http://localhost:9081/", "http://localhost:9081/"},
           {"HTTP://Host/", "http://Host/"},
           {"http://h/a%2Fb", "http://h/a%2Fb"},
           {"http://h/a b", "http://h/a%20b"},
           {"http://h?q=1#frag ment", "http://h?q=1#frag%20ment"},
           {"http://h/?", "http://h/?"},
           {"mailto:x@y", "mailto:x@y"},
           {"http://[::1]:8080/x", "http://[::1]:8080/x"},
           {"file:///tmp/x", "file:///tmp/x"},
           {"s3:/bucket", "s3:/bucket"},
           {"gs://b", "gs://b"},
           {"/just/a/path", "/just/a/path"},
           {"*", "*"},
           {"http://h/%E6%97%A5", "http://h/%E6%97%A5"},
       }) {
    INFO(c.text);
    CHECK(url(c.text).toString() == c.printed);
  }
  const GoUrl parsed = url("s3://bucket/a%2Fb?x=1#f");
  CHECK(parsed.scheme == "s3");
  CHECK(parsed.host == "bucket");
  CHECK(parsed.path == "/a/b");
  CHECK(parsed.rawPath == "/a%2Fb");
  CHECK(parsed.rawQuery == "x=1");
  CHECK(parsed.fragment == "f");
  CHECK(url("s3:/bucket").omitHost);
  CHECK(url("http://h/?").forceQuery);
  CHECK(url("mailto:x@y").opaque == "x@y");
  // A path whose first segment has a colon is printed with "./", as Go does.
  GoUrl colon;
  colon.path = "a:b";
  CHECK(colon.toString() == "./a:b");
}

TEST_CASE("URLs Go refuses are refused with Go's reason", "[blob][record]") {
  CHECK(urlError(":foo") == "missing protocol scheme");
  CHECK(urlError("1a:b") == "first path segment in URL cannot contain colon");
  CHECK(urlError("http://h:port/") == "invalid port \":port\" after host");
  CHECK(urlError("http://a b/") == "invalid character \" \" in host name");
  CHECK(urlError("http://h/%zz") == "invalid URL escape \"%zz\"");
  CHECK(urlError("http://h/%4") == "invalid URL escape \"%4\"");
  CHECK(urlError("http://h/\n") == "net/url: invalid control character in URL");
  CHECK(urlError("http://[::1/") == "missing ']' in host");
  CHECK(urlError("http://a\"b@h/") == "net/url: invalid userinfo");
}

TEST_CASE("a batch decodes back to the records it was made of", "[blob][record]") {
  std::vector<LogRequest> batch = blobtest::variedBatch(40);
  batch[3].url->hasUser = true;
  batch[5].metadata["Null"] = std::nullopt;
  batch[6].occurrenceTime.offsetSeconds = -9 * 3600 - 30 * 60;
  std::string text;
  appendBatchJson(text, batch);
  CHECK(decode(text) == batch);
}

TEST_CASE("a batch may be null or empty, and a null element is an empty record", "[blob][record]") {
  CHECK(decode("null").empty());
  CHECK(decode(" [ ] ").empty());
  const auto batch = decode("[null, {}]");
  REQUIRE(batch.size() == 2);
  CHECK(batch[0] == LogRequest{});
  CHECK(batch[1] == LogRequest{});
}

TEST_CASE("field names match case-insensitively and unknown fields are ignored", "[blob][record]") {
  const auto batch = decode(
      R"([{"ID":"x","ReqType":"t","extra":{"deep":[1,[2,{"a":null}]]},"URL":{"host":"h","Scheme":"s3","Unknown":[1]},)"
      R"("tlsskipverify":true,"id2":5}])");
  REQUIRE(batch.size() == 1);
  CHECK(batch[0].id == "x");
  CHECK(batch[0].reqType == "t");
  CHECK(batch[0].tlsSkipVerify);
  REQUIRE(batch[0].url);
  CHECK(batch[0].url->host == "h");
  CHECK(batch[0].url->toString() == "s3://h");
}

TEST_CASE("nulls leave fields as they are, as Go's decoder does", "[blob][record]") {
  const auto batch = decode(
      R"([{"id":null,"bytes":null,"url":null,"metadata":{"A":null,"B":["x",null]},"annotations":{"k":null},)"
      R"("tlsSkipVerify":null,"occurrenceTime":null}])");
  REQUIRE(batch.size() == 1);
  CHECK(batch[0].id.empty());
  CHECK_FALSE(batch[0].bytes);
  CHECK_FALSE(batch[0].url);
  CHECK_FALSE(batch[0].metadata.at("A"));
  CHECK(*batch[0].metadata.at("B") == std::vector<std::string>{"x", ""});
  CHECK(batch[0].annotations.at("k").empty());
  CHECK(batch[0].occurrenceTime == Timestamp{});
}

TEST_CASE("base64 payloads decode as Go's StdEncoding does", "[blob][record]") {
  CHECK(*decode(R"([{"bytes":"aGVsbG8="}])")[0].bytes == "hello");
  CHECK(*decode(R"([{"bytes":"aGVs\r\nbG8="}])")[0].bytes == "hello");  // CR and LF skipped
  CHECK(*decode(R"([{"bytes":""}])")[0].bytes == "");
  CHECK(*decode(R"([{"bytes":"AA=="}])")[0].bytes == std::string(1, '\0'));
  for (const char* bad : {"aGVsbG8", "aGVsbG8==", "aGV=sbG8", "a===", "!!!!", "aGVsbG8=x"}) {
    INFO(bad);
    CHECK(decodeError(std::string(R"([{"bytes":")") + bad + "\"}]").find("not valid base64") !=
          std::string::npos);
  }
  std::string all;
  for (int c = 0; c < 256; ++c)
    all += static_cast<char>(c);
  for (size_t length = 0; length <= all.size(); length += 37) {
    std::string encoded;
    appendBase64(encoded, all.substr(0, length));
    std::string decoded;
    REQUIRE(decodeBase64(encoded, decoded));
    CHECK(decoded == all.substr(0, length));
  }
}

TEST_CASE("what follows the batch is not read, as Go's json.Decoder does", "[blob][record]") {
  CHECK(decode(R"([{"id":"a"}] trailing {garbage)").size() == 1);
}

TEST_CASE("bad batches are refused naming the record and the field", "[blob][record]") {
  CHECK(decodeError(R"({"id":"x"})") == "expected a JSON array of log records, got an object");
  CHECK(decodeError("42") == "expected a JSON array of log records, got a number");
  CHECK(decodeError(R"([{}, 1])") == "record 1: expected an object, got a number");
  CHECK(decodeError(R"([{"id":5}])") == R"(record 0: field "id": expected a string, got a number)");
  CHECK(decodeError(R"([{},{"tlsSkipVerify":"true"}])") ==
        R"(record 1: field "tlsSkipVerify": expected a boolean, got a string)");
  CHECK(decodeError(R"([{"url":"s3://b"}])") ==
        R"(record 0: field "url": expected a url.URL object, got a string)");
  CHECK(decodeError(R"([{"url":{"Host":1}}])") ==
        R"(record 0: field "url": expected a string, got a number)");
  CHECK(decodeError(R"([{"url":{"User":"u"}}])") ==
        R"(record 0: field "url": expected a url.Userinfo object, got a string)");
  CHECK(decodeError(R"([{"metadata":{"a":"b"}}])") ==
        R"(record 0: field "metadata": expected an array of strings, got a string)");
  CHECK(decodeError(R"([{"metadata":{"a":[1]}}])") ==
        R"(record 0: field "metadata": expected an array of strings, got a number)");
  CHECK(decodeError(R"([{"annotations":[]}])") ==
        R"(record 0: field "annotations": expected an object of strings, got an array)");
  CHECK(decodeError(R"([{"occurrenceTime":"yesterday"}])") ==
        R"(record 0: field "occurrenceTime": not an RFC 3339 time: "yesterday")");
  CHECK(decodeError("[{\"id\":\"x\"}").find("parse error") != std::string::npos);
  CHECK(decodeError("").find("parse error") != std::string::npos);
  CHECK(decodeError("[{\"id\":\"\xff\"}]").find("parse error") != std::string::npos);
}
