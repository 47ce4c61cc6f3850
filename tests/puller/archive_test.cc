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
