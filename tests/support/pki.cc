#include "tests/support/pki.h"

#include <stdexcept>
#include <vector>

#include "tests/support/process.h"

namespace testsupport {

namespace {

using namespace std::chrono_literals;

int run(const std::vector<std::string>& argv) {
  Process process(argv);
  return process.wait(60s);
}

}  // namespace

TestPki makeTestPki(const std::string& dir) {
  TestPki pki{dir + "/ca.crt", dir + "/server.key", dir + "/server.crt"};
  std::string caKey = dir + "/ca.key";
  std::string csr = dir + "/server.csr";
  std::string extensions = dir + "/server.ext";
  writeFile(extensions,
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
            "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
  int status = run({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    caKey, "-out", pki.caCert, "-days", "2", "-subj", "/CN=ksa test CA"});
  status |= run({"/usr/bin/openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout",
                 pki.serverKey, "-out", csr, "-subj", "/CN=127.0.0.1"});
  status |= run({"/usr/bin/openssl", "x509", "-req", "-in", csr, "-CA", pki.caCert, "-CAkey", caKey,
                 "-CAcreateserial", "-out", pki.serverCert, "-days", "2", "-extfile", extensions});
  if (status != 0) throw std::runtime_error("openssl failed to make the test certificates");
  return pki;
}

}  // namespace testsupport
