// Archive extraction: tar, tar.gz and zip unpack; hostile archives are refused and leave
// nothing behind, inside or outside the destination.
#include <catch2/catch.hpp>

#include <filesystem>

#include "puller/storage/archive.h"
#include "tests/puller/storage_peers.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;

namespace {

std::string stage(const std::string& fixture) {
  std::string dir = testsupport::makeTempDir("extract") + "/dest";
  fs::create_directories(dir);
  fs::copy_file(storagetest::archiveFixtures() + "/" + fixture, dir + "/" + fixture);
  return dir;
}

}  // namespace

TEST_CASE("tar, tar.gz and zip archives are unpacked and removed", "[storage][archive]") {
  for (const char* fixture : {"good.tar.gz", "good.tar", "good.zip"}) {
    INFO(fixture);
    std::string dir = stage(fixture);
    auto status = storage::extractArchive(fs::path(dir) / fixture, dir);
    INFO(status.message);
    REQUIRE(status.ok);
    auto files = storagetest::listFiles(dir);
    CHECK(files.contains("model/config.json"));
    CHECK(files.contains("model/weights/w.bin"));
    CHECK_FALSE(files.contains(fixture));
    CHECK(fs::file_size(dir + "/model/weights/w.bin") == 256 * 64);
    CHECK(testsupport::readFile(dir + "/model/config.json") == R"({"name":"good"})");
    if (std::string(fixture) != "good.zip") {
      CHECK(fs::is_symlink(dir + "/model/latest"));
      CHECK(testsupport::readFile(dir + "/model/latest").size() == 256 * 64);
    }
  }
}

TEST_CASE("Archives that try to escape are refused and leave nothing behind",
          "[storage][archive]") {
  for (const char* fixture :
       {"dotdot.tar.gz", "absolute.tar", "symlink_out.tar.gz", "hardlink_out.tar", "dotdot.zip"}) {
    INFO(fixture);
    std::string dir = stage(fixture);
    std::string parent = fs::path(dir).parent_path();
    auto status = storage::extractArchive(fs::path(dir) / fixture, dir);
    CHECK_FALSE(status.ok);
    CHECK_THAT(status.message, Catch::Contains("refused"));
    // Only the archive itself remains; the harmless first entry was not kept either.
    CHECK(storagetest::listEntries(dir) == std::set<std::string>{fixture});
    CHECK(storagetest::listEntries(parent) ==
          std::set<std::string>{"dest", "dest/" + std::string(fixture)});
    CHECK_FALSE(fs::exists(storagetest::archiveFixtures() + "/absolute-escaped.txt"));
  }
}

TEST_CASE("A file that is not an archive is a clear error", "[storage][archive]") {
  std::string dir = testsupport::makeTempDir("extract");
  testsupport::writeFile(dir + "/model.tar.gz", "this is not gzip");
  auto status = storage::extractArchive(fs::path(dir) / "model.tar.gz", dir);
  CHECK_FALSE(status.ok);
  CHECK_THAT(status.message, Catch::Contains("model.tar.gz"));
}

TEST_CASE("An archive merges into existing folders of the same name as tar does",
          "[storage][archive]") {
  std::string dir = stage("good.tar");
  fs::create_directories(dir + "/model/weights");
  testsupport::writeFile(dir + "/model/kept.bin", "kept");
  testsupport::writeFile(dir + "/model/weights/old.bin", "old");
  testsupport::writeFile(dir + "/model/config.json", "stale");
  auto status = storage::extractArchive(fs::path(dir) / "good.tar", dir);
  INFO(status.message);
  REQUIRE(status.ok);
  CHECK(storagetest::listFiles(dir) ==
        std::set<std::string>{"model/kept.bin", "model/weights/old.bin", "model/config.json",
                              "model/weights/w.bin"});
  CHECK(testsupport::readFile(dir + "/model/kept.bin") == "kept");
  CHECK(testsupport::readFile(dir + "/model/weights/old.bin") == "old");
  CHECK(testsupport::readFile(dir + "/model/config.json") == R"({"name":"good"})");
  CHECK(fs::is_symlink(dir + "/model/latest"));
}

TEST_CASE("An archive file and an existing folder of one name is an error that deletes neither",
          "[storage][archive]") {
  SECTION("a folder in the archive where a file is") {
    std::string dir = stage("good.tar");
    fs::create_directories(dir + "/model");
    testsupport::writeFile(dir + "/model/weights", "a file");
    auto status = storage::extractArchive(fs::path(dir) / "good.tar", dir);
    CHECK_FALSE(status.ok);
    CHECK_THAT(status.message,
               Catch::Contains("model/weights") && Catch::Contains("a file of that name"));
    CHECK(testsupport::readFile(dir + "/model/weights") == "a file");
  }
  SECTION("a file in the archive where a folder is") {
    std::string dir = stage("good.tar");
    fs::create_directories(dir + "/model/config.json");
    testsupport::writeFile(dir + "/model/config.json/inside", "kept");
    auto status = storage::extractArchive(fs::path(dir) / "good.tar", dir);
    CHECK_FALSE(status.ok);
    CHECK_THAT(status.message,
               Catch::Contains("model/config.json") && Catch::Contains("a folder of that name"));
    CHECK(testsupport::readFile(dir + "/model/config.json/inside") == "kept");
  }
  SECTION("a folder in the archive where a link to a folder is") {
    // Following the link would write the archive's files wherever it points.
    std::string dir = stage("good.tar");
    std::string elsewhere = fs::path(dir).parent_path() / "elsewhere";
    fs::create_directories(elsewhere);
    fs::create_directory_symlink(elsewhere, dir + "/model");
    auto status = storage::extractArchive(fs::path(dir) / "good.tar", dir);
    CHECK_FALSE(status.ok);
    CHECK(storagetest::listEntries(elsewhere).empty());
  }
}
