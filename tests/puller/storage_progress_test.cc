// Download progress: the tracker's counting (retries, unknown sizes, runParallel's workers), the
// reporter's timing, and the lines the real storage-initializer logs for a slow download.
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <regex>
#include <thread>

#include "puller/storage/parallel.h"
#include "puller/storage/progress.h"
#include "tests/puller/storage_peers.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// Sends the default logger's lines to a ring buffer for the scope of a test; the buffer's own
// lock makes it safe to read while a reporter thread logs.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink_));
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::string text() const {
    std::string out;
    for (const auto& line : sink_->last_formatted())
      out += line;
    return out;
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_ =
      std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
};

struct ProgressLine {
  uint64_t bytes;
  uint64_t total;
  size_t filesLeft;
  size_t files;
};

// The "(N of M bytes, P%) ... L of F files left" lines in `output`.
std::vector<ProgressLine> progressLines(const std::string& output) {
  static const std::regex line(
      R"(progress of [^\n]*\((\d+) of (\d+) bytes, \d+%\) at [^\n]*/s, (\d+) of (\d+) files left)");
  std::vector<ProgressLine> out;
  for (auto it = std::sregex_iterator(output.begin(), output.end(), line);
       it != std::sregex_iterator(); ++it) {
    out.push_back(
        {std::stoull((*it)[1]), std::stoull((*it)[2]), std::stoul((*it)[3]), std::stoul((*it)[4])});
  }
  return out;
}

}  // namespace

TEST_CASE("A retried file replaces its bytes instead of adding to them", "[storage][progress]") {
  storage::ProgressTracker tracker("/models/m");
  tracker.addBytes("/models/m/a.bin", 0, true, 100, 60);
  tracker.addBytes("/models/m/a.bin", 0, true, 100, 30);  // the retry starts over
  tracker.addBytes("/models/m/a.bin", 0, false, -1, 70);
  storage::ProgressSnapshot snapshot = tracker.snapshot();
  CHECK(snapshot.bytes == 100);
  CHECK(snapshot.expectedKnown);
  CHECK(snapshot.bytesExpected == 100);
  CHECK(snapshot.filesPlanned == 1);
  CHECK(snapshot.currentFile == "a.bin");
}

TEST_CASE("The parts of one file count as one file, and a retried part replaces only its bytes",
          "[storage][progress]") {
  storage::ProgressTracker tracker("/models/m");
  tracker.planFiles(1);
  tracker.addBytes("/models/m/big.bin", 0, true, 100, 40);
  tracker.addBytes("/models/m/big.bin", 100, true, 100, 50);
  tracker.addBytes("/models/m/big.bin", 100, true, 100, 10);  // the second part starts over
  tracker.addBytes("/models/m/big.bin", 0, false, -1, 60);
  storage::ProgressSnapshot snapshot = tracker.snapshot();
  CHECK(snapshot.bytes == 110);
  CHECK(snapshot.filesPlanned == 1);
  CHECK(snapshot.expectedKnown);
  CHECK(snapshot.bytesExpected == 200);
  CHECK(snapshot.currentFile == "big.bin");
}

TEST_CASE("The total is the listing's, or known once every planned file's size is",
          "[storage][progress]") {
  storage::ProgressTracker tracker("/models/m");
  tracker.planFiles(2);
  tracker.addBytes("/models/m/sub/a.bin", 0, true, 10, 10);
  CHECK_FALSE(tracker.snapshot().expectedKnown);  // b.bin has not started
  tracker.addBytes("/models/m/b.bin", 0, true, -1, 5);
  CHECK_FALSE(tracker.snapshot().expectedKnown);  // b.bin came without a Content-Length
  tracker.addBytes("/models/m/b.bin", 0, true, 20, 5);
  storage::ProgressSnapshot snapshot = tracker.snapshot();
  CHECK(snapshot.expectedKnown);
  CHECK(snapshot.bytesExpected == 30);
  CHECK(snapshot.bytes == 15);
  CHECK(snapshot.currentFile == "b.bin");
  std::string line = storage::formatProgress("s3://bucket/m", snapshot, 2048);
  CHECK(line ==
        "progress of s3://bucket/m: 15 B of 30 B (15 of 30 bytes, 50%) at 2.0 KiB/s, 2 of 2 "
        "files left, writing b.bin");
  // A listing's sizes stand over the Content-Lengths seen so far.
  tracker.planBytes(1000);
  CHECK(tracker.snapshot().bytesExpected == 1000);
  CHECK(tracker.snapshot().expectedKnown);
}

TEST_CASE("runParallel plans its files and counts them done on its worker threads",
          "[storage][progress]") {
  storage::ProgressTracker tracker("/d");
  storage::ScopedProgress scope(&tracker);
  std::atomic<size_t> seen{0};
  storage::Status status = storage::runParallel(6, 3, [&](size_t i) {
    // The worker threads feed the caller's tracker.
    if (storage::currentProgress() == &tracker) ++seen;
    tracker.addBytes("/d/f" + std::to_string(i), 0, true, 1, 1);
    return i == 5 ? storage::Status::failure("no") : storage::Status::success();
  });
  CHECK_FALSE(status.ok);
  storage::ProgressSnapshot snapshot = tracker.snapshot();
  CHECK(seen.load() == 6);
  CHECK(snapshot.filesPlanned == 6);
  CHECK(snapshot.filesDone == 5);
}

TEST_CASE("The reporter logs at its interval and never after stop", "[storage][progress]") {
  CapturedLog log;
  storage::ProgressTracker tracker("/d");
  tracker.addBytes("/d/a.bin", 0, true, 1000, 10);
  {
    // Stopped within the first interval: nothing.
    storage::ProgressReporter quick(tracker, "s3://b/m", 5s);
    std::this_thread::sleep_for(50ms);
  }
  CHECK(log.text().empty());
  storage::ProgressReporter reporter(tracker, "s3://b/m", 100ms);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (progressLines(log.text()).size() < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  reporter.stop();
  std::string atStop = log.text();
  CHECK(progressLines(atStop).size() >= 2);
  std::this_thread::sleep_for(250ms);
  CHECK(log.text() == atStop);
}

TEST_CASE("STORAGE_PROGRESS_INTERVAL sets the interval, 0 turns it off, junk keeps the default",
          "[storage][progress]") {
  {
    storagetest::ScopedEnv env({{"STORAGE_PROGRESS_INTERVAL", std::nullopt}});
    CHECK(storage::progressInterval() == 10s);
  }
  {
    storagetest::ScopedEnv env({{"STORAGE_PROGRESS_INTERVAL", std::string("0.5")}});
    CHECK(storage::progressInterval() == 500ms);
  }
  {
    storagetest::ScopedEnv env({{"STORAGE_PROGRESS_INTERVAL", std::string("0")}});
    CHECK(storage::progressInterval() == 0ms);
  }
  for (const char* junk : {"-1", "ten", "5s"}) {
    storagetest::ScopedEnv env({{"STORAGE_PROGRESS_INTERVAL", std::string(junk)}});
    CHECK(storage::progressInterval() == 10s);
  }
}

TEST_CASE("storage-initializer logs readable progress for a slow download, without secrets",
          "[storage][progress][initializer]") {
  storagetest::Nginx nginx;
  fs::create_directories(nginx.root() + "/slow");
  constexpr uint64_t kSize = 3 << 20;  // ~6 s at nginx's 512k/s
  storagetest::writePatternFile(nginx.root() + "/slow/model.bin", kSize);
  std::string dir = testsupport::makeTempDir("progress");
  // User info and a query stand in for credentials and a SAS token; nginx ignores both.
  std::string uri = "http://user:hunter2@127.0.0.1:" + std::to_string(nginx.httpPort()) +
                    "/slow/model.bin?sig=SECRETSIG";
  testsupport::Process process({testsupport::builtBinary("storage-initializer"), uri, dir + "/out"},
                               {{"STORAGE_PROGRESS_INTERVAL", "1"}});
  int status = process.wait(60s);
  std::string output = process.output();
  INFO(output);
  REQUIRE(status == 0);
  CHECK(fs::file_size(dir + "/out/model.bin") == kSize);
  std::vector<ProgressLine> lines = progressLines(output);
  REQUIRE(lines.size() >= 3);
  for (size_t i = 0; i < lines.size(); ++i) {
    CHECK(lines[i].total == kSize);
    CHECK(lines[i].bytes <= lines[i].total);
    CHECK(lines[i].files == 1);
    CHECK(lines[i].filesLeft == 1);
    if (i > 0) CHECK(lines[i].bytes > lines[i - 1].bytes);
  }
  CHECK_THAT(output,
             Catch::Contains("progress of http://127.0.0.1:" + std::to_string(nginx.httpPort()) +
                             "/slow/model.bin?<redacted>: ") &&
                 Catch::Contains("files left, writing model.bin"));
  CHECK_THAT(output, !Catch::Contains("hunter2") && !Catch::Contains("SECRETSIG"));
  // The rate reads as nginx's limit (512 KiB/s), give or take the timing of one interval.
  CHECK_THAT(output, Catch::Matches(R"([\s\S]* at [3-7]\d\d\.\d KiB/s[\s\S]*)"));
}

TEST_CASE("A download done within the first interval logs no progress",
          "[storage][progress][initializer]") {
  storagetest::Nginx nginx;
  storagetest::writePatternFile(nginx.root() + "/model.bin", 3 << 20);
  std::string dir = testsupport::makeTempDir("progress");
  testsupport::Process process(
      {testsupport::builtBinary("storage-initializer"), nginx.url("/model.bin"), dir + "/out"}, {},
      {"STORAGE_PROGRESS_INTERVAL"});
  int status = process.wait(60s);
  std::string output = process.output();
  INFO(output);
  REQUIRE(status == 0);
  CHECK(fs::file_size(dir + "/out/model.bin") == 3 << 20);
  CHECK_THAT(output,
             Catch::Contains("downloaded http://127.0.0.1") && !Catch::Contains("progress of"));
}

TEST_CASE("storage-initializer counts a listing's files and takes its total from the listing",
          "[storage][progress][initializer]") {
  // Google's storage has no local server; the fake follows its JSON API and answers each object
  // after 0.8 s, so 12 objects, 4 at a time, take about 2.4 s.
  storagetest::FakeGcs gcs({"--media-delay", "0.8"});
  fs::create_directories(gcs.root() + "/bucket/m/sub");
  uint64_t total = 0;
  for (int i = 0; i < 12; ++i) {
    uint64_t size = 1000 + static_cast<uint64_t>(i) * 100;
    storagetest::writePatternFile(gcs.root() + "/bucket/m/sub/part-" + std::to_string(i), size);
    total += size;
  }
  std::string dir = testsupport::makeTempDir("progress");
  testsupport::Process process(
      {testsupport::builtBinary("storage-initializer"), "gs://bucket/m", dir + "/out"},
      {{"STORAGE_EMULATOR_HOST", gcs.endpoint()}, {"STORAGE_PROGRESS_INTERVAL", "0.4"}},
      {"GCE_METADATA_HOST", "GOOGLE_APPLICATION_CREDENTIALS"});
  int status = process.wait(60s);
  std::string output = process.output();
  INFO(output);
  REQUIRE(status == 0);
  CHECK(storagetest::listFiles(dir + "/out").size() == 12);
  std::vector<ProgressLine> lines = progressLines(output);
  REQUIRE(lines.size() >= 3);
  bool partway = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    CHECK(lines[i].total == total);
    CHECK(lines[i].files == 12);
    CHECK(lines[i].bytes <= total);
    if (lines[i].filesLeft > 0 && lines[i].filesLeft < 12) partway = true;
    if (i > 0) {
      CHECK(lines[i].bytes >= lines[i - 1].bytes);
      CHECK(lines[i].filesLeft <= lines[i - 1].filesLeft);
    }
  }
  CHECK(partway);
  CHECK_THAT(output, Catch::Contains("progress of gs://bucket/m: ") &&
                         Catch::Contains("writing sub/part-"));
}
