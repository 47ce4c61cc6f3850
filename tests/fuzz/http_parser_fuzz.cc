// Fuzzes core::HttpParser, the llhttp wrapper that reads every client request and every model
// server response. The same bytes are parsed twice: in one piece, and cut at arbitrary points
// as TCP may deliver them. Both runs must report the same messages and the same outcome (a
// proxy whose verdict depends on segmentation can be smuggled through), and each call must
// respect the wrapper's contract: never more consumed than given, an error is final, and no
// head beyond the configured limits reaches the delegate.
//
// Input: four configuration bytes, then the bytes the peer sends.
//   byte 0: bit 0 parse responses (else requests); bit 1 pause after each message, as the
//           server does with pipelined requests; bit 2 responses are to HEAD requests
//   byte 1: header byte limit, 64 + 16 * value
//   byte 2: header count limit, 1 + value % 32
//   byte 3: seed of the cut points
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/http/parser.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

// Records what the parser reports, in a form that does not depend on how the input was cut:
// body bytes are gathered per message.
class Recorder final : public core::HttpParser::Delegate {
 public:
  Recorder(bool response, bool pause, bool headResponses, core::ParserLimits limits)
      : response_(response), pause_(pause), headResponses_(headResponses), limits_(limits) {}

  void attach(core::HttpParser& parser) { parser_ = &parser; }
  std::string& log() { return log_; }

  bool onParsedHead() override {
    FUZZ_CHECK(!inBody_);
    size_t bytes = 0;
    const core::Headers* headers = nullptr;
    if (response_) {
      const core::ResponseHead& head = parser_->response();
      log_ += "response " + std::to_string(head.status) + " 1." +
              std::to_string(head.versionMinor) + " " + head.reason + "\n";
      bytes += head.reason.size();
      headers = &head.headers;
    } else {
      const core::RequestHead& head = parser_->request();
      log_ += "request " + head.method + " " + head.target + " 1." +
              std::to_string(head.versionMinor) + "\n";
      bytes += head.target.size();
      headers = &head.headers;
    }
    FUZZ_CHECK(headers->size() <= limits_.maxHeaderCount);
    for (const auto& h : *headers) {
      bytes += h.name.size() + h.value.size();
      log_ += "  " + h.name + ": " + h.value + "\n";
    }
    FUZZ_CHECK(bytes <= limits_.maxHeaderBytes);
    log_ += "  chunked=" + std::to_string(parser_->chunked()) + " length=" +
            (parser_->contentLength() ? std::to_string(*parser_->contentLength()) : "-") +
            " upgrade=" + std::to_string(parser_->upgrade()) + "\n";
    inBody_ = true;
    return response_ && headResponses_;
  }

  void onParsedBody(const char* data, size_t length) override {
    FUZZ_CHECK(inBody_);
    body_.append(data, length);
  }

  bool onParsedMessageComplete() override {
    log_ += "  body " + std::to_string(body_.size()) + ": " + body_ +
            "\n  complete keepAlive=" + std::to_string(parser_->keepAlive()) + "\n";
    body_.clear();
    inBody_ = false;
    return pause_;
  }

 private:
  bool response_;
  bool pause_;
  bool headResponses_;
  core::ParserLimits limits_;
  core::HttpParser* parser_ = nullptr;
  std::string log_;
  std::string body_;
  bool inBody_ = false;
};

// Feeds `pieces` in order, resuming after pauses, and returns the log with the outcome.
std::string parse(const std::vector<std::string>& pieces, bool response, bool pause,
                  bool headResponses, core::ParserLimits limits) {
  Recorder recorder(response, pause, headResponses, limits);
  core::HttpParser parser(response ? HTTP_RESPONSE : HTTP_REQUEST, recorder, limits);
  recorder.attach(parser);
  std::string outcome = "ok";
  for (const auto& piece : pieces) {
    size_t offset = 0;
    while (offset < piece.size() && outcome == "ok") {
      size_t length = piece.size() - offset;
      core::HttpParser::Result result = parser.execute(piece.data() + offset, length);
      FUZZ_CHECK(result.consumed <= length);
      switch (result.status) {
        case core::HttpParser::Status::Ok:
          FUZZ_CHECK(result.consumed == length);
          offset = piece.size();
          break;
        case core::HttpParser::Status::Paused:
          FUZZ_CHECK(pause);
          FUZZ_CHECK(!parser.inMessage());
          parser.resume();
          offset += result.consumed;
          break;
        case core::HttpParser::Status::Upgrade:
          outcome = "upgrade";
          break;
        case core::HttpParser::Status::Error: {
          FUZZ_CHECK(result.errorStatus == 400 || result.errorStatus == 431 ||
                     result.errorStatus == 505);
          // Which limit or rule trips first (400 or 431) may depend on where a span ends; that
          // the message is refused may not.
          outcome = "error";
          const char probe[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
          core::HttpParser::Result again = parser.execute(probe, sizeof probe - 1);
          FUZZ_CHECK(again.status == core::HttpParser::Status::Error);
          break;
        }
      }
    }
    if (outcome != "ok") break;
  }
  if (outcome == "ok" && parser.inMessage()) {
    core::HttpParser::Result end = parser.finish();
    outcome = end.status == core::HttpParser::Status::Error ? "unfinished" : "finished";
  }
  return recorder.log() + outcome + "\n";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const bool response = (data[0] & 1) != 0;
  const bool pause = (data[0] & 2) != 0;
  const bool headResponses = (data[0] & 4) != 0;
  core::ParserLimits limits{64 + size_t{data[1]} * 16, 1 + size_t{data[2]} % 32};
  std::minstd_rand random(data[3]);
  std::string input(reinterpret_cast<const char*>(data) + 4, size - 4);

  std::string whole = parse({input}, response, pause, headResponses, limits);

  std::vector<std::string> pieces;
  for (size_t at = 0; at < input.size();) {
    size_t length = 1 + random() % 16;
    pieces.push_back(input.substr(at, length));
    at += length;
  }
  std::string split = parse(pieces, response, pause, headResponses, limits);
  if (whole != split) {
    std::fprintf(stderr, "in one piece:\n%s\ncut in %zu pieces:\n%s\n", whole.c_str(),
                 pieces.size(), split.c_str());
    fuzz::fail("http_parser_fuzz", "the outcome depends on how the input was cut");
  }
  return 0;
}
