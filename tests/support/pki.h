// Certificates for TLS peers in tests, made with the openssl command.
#pragma once

#include <string>

namespace testsupport {

// A CA and a server certificate for 127.0.0.1 signed by it, in `dir`.
struct TestPki {
  std::string caCert;
  std::string serverKey;
  std::string serverCert;
};
TestPki makeTestPki(const std::string& dir);

}  // namespace testsupport
