// The storage-initializer binary: exit codes and messages, links in local sources, archives
// merged into what earlier pairs wrote.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/puller/storage_peers.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using Run = storagetest::InitializerRun;
using storagetest::runInitializer;

namespace {}  // namespace

TEST_CASE("storage-initializer copies each source into its destination", "[storage][initializer]") {
  std::string dir = testsupport::makeTempDir("init");
  fs::create_directories(dir + "/src/m/sub");
  testsupport::writeFile(dir + "/src/m/a.bin", "a");
  testsupport::writeFile(dir + "/src/m/sub/b.bin", "b");
  testsupport::writeFile(dir + "/src/single.txt", "s");
  Run result = runInitializer(
      {dir + "/src/m", dir + "/out1", "file://" + dir + "/src/single.txt", dir + "/out2"});
  INFO(result.output);
  CHECK(result.status == 0);
  CHECK(testsupport::readFile(dir + "/out1/sub/b.bin") == "b");
  CHECK(testsupport::readFile(dir + "/out2/single.txt") == "s");
}

TEST_CASE("storage-initializer rejects a wrong argument count with usage, exit 1",
          "[storage][initializer]") {
  for (const auto& args : {std::vector<std::string>{}, std::vector<std::string>{"s3://b/m"},
                           std::vector<std::string>{"a", "b", "c"}}) {
    Run result = runInitializer(args);
    CHECK(result.status == 1);
    CHECK_THAT(result.output, Catch::Contains("usage: storage-initializer SRC_URI DEST_PATH"));
  }
}

TEST_CASE("storage-initializer names the URI and the cause on failure, exit 1",
          "[storage][initializer]") {
  std::string dir = testsupport::makeTempDir("init");
  Run bad = runInitializer({"sss://bucket/model", dir + "/out"});
  CHECK(bad.status == 1);
  CHECK_THAT(bad.output, Catch::Contains("failed to download sss://bucket/model") &&
                             Catch::Contains("protocol not supported"));
  Run missing = runInitializer({dir + "/absent-model", dir + "/out"});
  CHECK(missing.status == 1);
  CHECK_THAT(missing.output,
             Catch::Contains(dir + "/absent-model") && Catch::Contains("no such file or folder"));
  // The first failure stops the run; later pairs are not attempted.
  testsupport::writeFile(dir + "/present.txt", "p");
  Run stops =
      runInitializer({dir + "/absent-model", dir + "/o1", dir + "/present.txt", dir + "/o2"});
  CHECK(stops.status == 1);
  CHECK_FALSE(fs::exists(dir + "/o2"));
}

TEST_CASE("storage-initializer copies linked files and folders by content into the destination",
          "[storage][initializer]") {
  // A Hugging Face cache snapshot: each file links into ../../blobs, outside the folder named,
  // and a linked folder points further up still.
  std::string dir = testsupport::makeTempDir("init");
  std::string repo = dir + "/hub/models--owner--m";
  std::string snapshot = repo + "/snapshots/abc";
  fs::create_directories(snapshot);
  fs::create_directories(repo + "/blobs");
  fs::create_directories(dir + "/shared/tok/nested");
  testsupport::writeFile(repo + "/blobs/1111", R"({"a":1})");
  testsupport::writeFile(repo + "/blobs/2222", "weights");
  testsupport::writeFile(dir + "/shared/tok/nested/vocab.txt", "vocab");
  fs::create_symlink("../../blobs/1111", snapshot + "/config.json");
  fs::create_symlink("../../blobs/2222", snapshot + "/model.bin");
  fs::create_directory_symlink("../../../../shared/tok", snapshot + "/tok");
  std::set<std::string> before = storagetest::listEntries(dir);

  Run result = runInitializer({snapshot, dir + "/out/model"});
  INFO(result.output);
  CHECK(result.status == 0);
  std::string model = dir + "/out/model";
  std::set<std::string> copied = storagetest::listEntries(model);
  CHECK(copied == std::set<std::string>{"config.json", "model.bin", "tok", "tok/nested",
                                        "tok/nested/vocab.txt"});
  for (const auto& entry : copied)
    CHECK_FALSE(fs::is_symlink(model + "/" + entry));
  CHECK(testsupport::readFile(model + "/config.json") == R"({"a":1})");
  CHECK(testsupport::readFile(model + "/model.bin") == "weights");
  CHECK(testsupport::readFile(model + "/tok/nested/vocab.txt") == "vocab");
  // Nothing was written anywhere but the destination.
  std::set<std::string> expected = before;
  expected.insert({"out", "out/model"});
  for (const auto& entry : copied)
    expected.insert("out/model/" + entry);
  CHECK(storagetest::listEntries(dir) == expected);
}

TEST_CASE("storage-initializer fails with the cause on links and folders it cannot copy",
          "[storage][initializer]") {
  std::string dir = testsupport::makeTempDir("init");
  auto source = [&](const std::string& name) {
    std::string path = dir + "/" + name;
    fs::create_directories(path + "/sub");
    testsupport::writeFile(path + "/a.bin", "a");
    return path;
  };
  fs::create_symlink("loop", source("self-loop") + "/loop");
  fs::create_directory_symlink("..", source("folder-loop") + "/sub/up");
  fs::create_symlink("absent.bin", source("dangling") + "/b.bin");
  std::vector<std::pair<std::string, std::string>> cases{
      {"self-loop", "loop: Too many levels of symbolic links"},
      {"folder-loop", "sub/up would copy a folder into itself"},
      {"dangling", "b.bin: No such file or directory"}};
  // root reads a folder whatever its mode, so the unreadable case only exists for other users.
  std::string unreadable;
  if (::geteuid() != 0) {
    unreadable = source("unreadable") + "/sub";
    fs::permissions(unreadable, fs::perms::none);
    cases.emplace_back("unreadable", "sub: Permission denied");
  }
  for (const auto& [name, cause] : cases) {
    INFO(name);
    Run result = runInitializer({dir + "/" + name, dir + "/out-" + name});
    INFO(result.output);
    // Before, an exception escaped the copy and aborted the process (exit 134).
    CHECK(result.status == 1);
    CHECK_THAT(result.output,
               Catch::Contains("failed to download " + dir + "/" + name) && Catch::Contains(cause));
  }
  if (!unreadable.empty()) fs::permissions(unreadable, fs::perms::owner_all);
}

TEST_CASE("storage-initializer refuses at once a destination inside its source",
          "[storage][initializer]") {
  std::string dir = testsupport::makeTempDir("init");
  fs::create_directories(dir + "/m/sub");
  testsupport::writeFile(dir + "/m/a.bin", "a");
  testsupport::writeFile(dir + "/m/sub/b.bin", "b");
  for (const char* destination : {"out", "sub/deeper/out"}) {
    INFO(destination);
    auto start = std::chrono::steady_clock::now();
    Run result = runInitializer({dir + "/m", dir + "/m/" + destination});
    // Before, the copy recursed into its own output for about 2000 levels.
    CHECK(std::chrono::steady_clock::now() - start < 10s);
    INFO(result.output);
    CHECK(result.status == 1);
    CHECK_THAT(result.output,
               Catch::Contains(std::string(destination) + " would copy a folder into itself"));
    CHECK_FALSE(fs::exists(dir + "/m/" + destination + "/" + destination));
  }
}

TEST_CASE("storage-initializer merges an archive into what an earlier pair wrote",
          "[storage][initializer]") {
  std::string dir = testsupport::makeTempDir("init");
  fs::create_directories(dir + "/src/model");
  testsupport::writeFile(dir + "/src/model/x.bin", "x");
  testsupport::writeFile(dir + "/src/model/config.json", "stale");
  // good.tar.gz holds model/config.json, model/weights/w.bin and a link model/latest.
  Run result = runInitializer({dir + "/src", dir + "/dest",
                               storagetest::archiveFixtures() + "/good.tar.gz", dir + "/dest"});
  INFO(result.output);
  CHECK(result.status == 0);
  CHECK(storagetest::listFiles(dir + "/dest") ==
        std::set<std::string>{"model/x.bin", "model/config.json", "model/weights/w.bin"});
  CHECK(testsupport::readFile(dir + "/dest/model/x.bin") == "x");
  CHECK(testsupport::readFile(dir + "/dest/model/config.json") == R"({"name":"good"})");
  CHECK(storagetest::listEntries(dir + "/dest") ==
        std::set<std::string>{"model", "model/x.bin", "model/config.json", "model/weights",
                              "model/weights/w.bin", "model/latest"});
}
