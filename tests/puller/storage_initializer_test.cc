// The storage-initializer binary: exit codes and messages.
#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/support/process.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct Run {
  int status;
  std::string output;
};

Run run(std::vector<std::string> args) {
  args.insert(args.begin(), testsupport::builtBinary("storage-initializer"));
  testsupport::Process process(args);
  int status = process.wait(60s);
  return {status, process.output()};
}

}  // namespace

TEST_CASE("storage-initializer copies each source into its destination", "[storage][initializer]") {
  std::string dir = testsupport::makeTempDir("init");
  fs::create_directories(dir + "/src/m/sub");
  testsupport::writeFile(dir + "/src/m/a.bin", "a");
  testsupport::writeFile(dir + "/src/m/sub/b.bin", "b");
  testsupport::writeFile(dir + "/src/single.txt", "s");
  Run result =
      run({dir + "/src/m", dir + "/out1", "file://" + dir + "/src/single.txt", dir + "/out2"});
  INFO(result.output);
  CHECK(result.status == 0);
  CHECK(testsupport::readFile(dir + "/out1/sub/b.bin") == "b");
  CHECK(testsupport::readFile(dir + "/out2/single.txt") == "s");
}

TEST_CASE("storage-initializer rejects a wrong argument count with usage, exit 1",
          "[storage][initializer]") {
  for (const auto& args : {std::vector<std::string>{}, std::vector<std::string>{"s3://b/m"},
                           std::vector<std::string>{"a", "b", "c"}}) {
    Run result = run(args);
    CHECK(result.status == 1);
    CHECK_THAT(result.output, Catch::Contains("usage: storage-initializer SRC_URI DEST_PATH"));
  }
}

TEST_CASE("storage-initializer names the URI and the cause on failure, exit 1",
          "[storage][initializer]") {
  std::string dir = testsupport::makeTempDir("init");
  Run bad = run({"sss://bucket/model", dir + "/out"});
  CHECK(bad.status == 1);
  CHECK_THAT(bad.output, Catch::Contains("failed to download sss://bucket/model") &&
                             Catch::Contains("protocol not supported"));
  Run missing = run({dir + "/absent-model", dir + "/out"});
  CHECK(missing.status == 1);
  CHECK_THAT(missing.output,
             Catch::Contains(dir + "/absent-model") && Catch::Contains("no such file or folder"));
  // The first failure stops the run; later pairs are not attempted.
  testsupport::writeFile(dir + "/present.txt", "p");
  Run stops = run({dir + "/absent-model", dir + "/o1", dir + "/present.txt", dir + "/o2"});
  CHECK(stops.status == 1);
  CHECK_FALSE(fs::exists(dir + "/o2"));
}
