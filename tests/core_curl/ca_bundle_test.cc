#include "core_curl/ca_bundle.h"

#include <catch2/catch.hpp>

#include "tests/support/process.h"

using namespace std::chrono_literals;

TEST_CASE("The CA bundle adds the custom file to the system roots and follows changes",
          "[core_curl]") {
  std::string dir = testsupport::makeTempDir("ca-bundle");
  std::string system = dir + "/system.pem";
  std::string custom = dir + "/custom.crt";
  testsupport::writeFile(system, "-----BEGIN CERTIFICATE-----\nSYSTEM\n-----END CERTIFICATE-----");
  core_curl::CaBundle bundle(custom, system);
  auto now = std::chrono::steady_clock::now();
  CHECK(bundle.current(now) == nullptr);

  testsupport::writeFile(custom, "-----BEGIN CERTIFICATE-----\nONE\n-----END CERTIFICATE-----\n");
  CHECK(bundle.current(now + 500ms) == nullptr);  // looked at once per second at most
  auto first = bundle.current(now + 1s);
  REQUIRE(first != nullptr);
  CHECK(first->find("SYSTEM") != std::string::npos);
  CHECK(first->find("ONE") < first->size());
  CHECK(first->find("SYSTEM") < first->find("ONE"));
  CHECK(bundle.current(now + 2s) == first);  // unchanged file: same bundle, not re-read

  testsupport::writeFile(custom,
                         "-----BEGIN CERTIFICATE-----\nTWO, longer\n-----END CERTIFICATE-----\n");
  auto second = bundle.current(now + 3s);
  REQUIRE(second != nullptr);
  CHECK(second->find("TWO") != std::string::npos);
  CHECK(second->find("ONE") == std::string::npos);

  testsupport::writeFile(custom, "not a certificate");
  CHECK(bundle.current(now + 4s) == nullptr);
}
