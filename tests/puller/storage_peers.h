// Real storage servers on loopback for the storage and puller tests: s3rver (S3), azurite
// (Azure Blob), nginx (http/https), and the fakes of GCS and the Hugging Face Hub.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/process.h"

namespace storagetest {

// Sets (or unsets, with nullopt) environment variables for the scope of a test.
class ScopedEnv {
 public:
  explicit ScopedEnv(std::map<std::string, std::optional<std::string>> values);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

// Every regular file below `root`, as relative paths with '/'.
std::set<std::string> listFiles(const std::string& root);
// Everything below `root` (files, folders, links; links listed, not followed), as relative paths.
std::set<std::string> listEntries(const std::string& root);
// Writes `size` bytes of a fixed pattern to `path`: each 8 bytes hold their own offset, so a
// part written at another part's place shows.
void writePatternFile(const std::string& path, uint64_t size);
// Whether two files have the same bytes (read a MiB at a time).
bool sameContent(const std::string& a, const std::string& b);
// The archive fixtures of tests/support/storage_make_archives.py, made once per run.
std::string archiveFixtures();
// A self-signed certificate for 127.0.0.1, made once per run: {cert, key} paths.
std::pair<std::string, std::string> selfSignedCertificate();

// HTTP PUT of a file or a string (libcurl), for uploading fixtures; returns the status.
long httpPut(const std::string& url, const std::map<std::string, std::string>& headers,
             const std::string& bodyOrPath, bool isPath, const std::string& caFile = "");

class S3rver {
 public:
  static constexpr const char* kAccessKey = "S3RVER";
  static constexpr const char* kSecretKey = "S3RVER";
  explicit S3rver(const std::string& bucket = "models");
  uint16_t port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Uploads with a SigV4 signature (path style).
  void put(const std::string& key, const std::string& content, bool isPath = false);
  // The environment that points the storage library here with the right keys.
  std::map<std::string, std::optional<std::string>> env() const;

 private:
  std::string bucket_;
  uint16_t port_;
  std::unique_ptr<testsupport::Process> process_;
};

class Azurite {
 public:
  static constexpr const char* kAccount = "devstoreaccount1";
  static constexpr const char* kKey =
      "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
  // With `oauth`, azurite serves https (selfSignedCertificate()) and checks bearer tokens'
  // issuer, audience and lifetime (`--oauth basic`; it needs https for that).
  explicit Azurite(bool oauth = false);
  uint16_t port() const { return port_; }
  std::string endpoint() const;  // http(s)://127.0.0.1:<port>/devstoreaccount1
  void createContainer(const std::string& container);
  void put(const std::string& container, const std::string& blob, const std::string& content,
           bool isPath = false);

 private:
  uint16_t port_;
  bool oauth_;
  std::unique_ptr<testsupport::Process> process_;
};

// nginx serving `root()` on http and https.
class Nginx {
 public:
  Nginx();
  uint16_t httpPort() const { return httpPort_; }
  uint16_t httpsPort() const { return httpsPort_; }
  const std::string& root() const { return root_; }
  std::string url(const std::string& path) const;
  std::string httpsUrl(const std::string& path) const;
  const std::string& caFile() const { return cert_; }
  // One line per request: `<uri> <status> "<Range>" "<If-Range>"`.
  std::string accessLog() const;

 private:
  uint16_t httpPort_;
  uint16_t httpsPort_;
  std::string prefix_;
  std::string root_;
  std::string cert_;
  std::unique_ptr<testsupport::Process> process_;
};

// tests/support/storage_fake_gcs.py; objects are files below root()/<bucket>/.
class FakeGcs {
 public:
  explicit FakeGcs(std::vector<std::string> extraArgs = {});
  uint16_t port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& root() const { return root_; }

 private:
  uint16_t port_;
  std::string root_;
  std::unique_ptr<testsupport::Process> process_;
};

// tests/support/storage_fake_hf.py; repositories are folders root()/<owner>/<model>/.
class FakeHf {
 public:
  explicit FakeHf(std::vector<std::string> extraArgs = {});
  uint16_t port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& root() const { return root_; }

 private:
  uint16_t port_;
  std::string root_;
  std::unique_ptr<testsupport::Process> process_;
};

// tests/support/storage_fake_aws_credentials.py: STS, container credentials and IMDSv2 on one
// port, answering `accessKey`/`secretKey` with a new session token per issue, valid `lifetime`
// seconds. Token files are made in a temp folder; each request is logged (requests()).
class FakeAwsCredentials {
 public:
  static constexpr const char* kRoleArn = "arn:aws:iam::123456789012:role/kserve-models";
  FakeAwsCredentials(const std::string& accessKey, const std::string& secretKey, int lifetime,
                     std::vector<std::string> extraArgs = {});
  uint16_t port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& webIdentityTokenFile() const { return webIdentityTokenFile_; }
  const std::string& containerTokenFile() const { return containerTokenFile_; }
  // One JSON document per request received, in order.
  std::vector<std::string> requests() const;
  // The environment that selects one chain step and nothing else: "web identity", "container"
  // or "imds" (every other AWS credential variable unset).
  std::map<std::string, std::optional<std::string>> env(const std::string& step) const;

 private:
  uint16_t port_;
  std::string dir_;
  std::string webIdentityTokenFile_;
  std::string containerTokenFile_;
  std::unique_ptr<testsupport::Process> process_;
};

// tests/support/storage_botocore_s3.py: a path-style S3 of the files below root()/<bucket>/ that
// verifies each signature with botocore, requiring `sessionToken` when it is not empty.
class BotocoreS3 {
 public:
  // With `tlsCert`/`tlsKey`, it serves https.
  BotocoreS3(const std::string& accessKey, const std::string& secretKey,
             const std::string& sessionToken, const std::string& tlsCert = "",
             const std::string& tlsKey = "", std::vector<std::string> extraArgs = {});
  std::string endpoint() const {
    return (tls_ ? "https" : "http") + std::string("://127.0.0.1:") + std::to_string(port_);
  }
  const std::string& root() const { return root_; }
  // One JSON document per verified request.
  std::vector<std::string> requests() const;

 private:
  uint16_t port_;
  std::string root_;
  std::string log_;
  bool tls_;
  std::unique_ptr<testsupport::Process> process_;
};

// Every variable of the AWS credential chain unset, and the instance metadata disabled: no
// credentials anywhere.
std::map<std::string, std::optional<std::string>> awsChainOff();

// A stdlib-Python fake from tests/support started on a free loopback port with `--port <port>`
// and `args`: storage_fake_google_auth.py (metadata server, STS, IAM Credentials, OAuth) and
// storage_fake_entra.py (Entra token endpoint, IMDS, identity endpoint).
class PythonFake {
 public:
  PythonFake(const std::string& script, std::vector<std::string> args);
  uint16_t port() const { return port_; }
  std::string hostPort() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string endpoint() const { return "http://" + hostPort(); }

 private:
  uint16_t port_;
  std::unique_ptr<testsupport::Process> process_;
};

// What one run of the storage-initializer binary did: its exit status and what it printed.
struct InitializerRun {
  int status;
  std::string output;
};

// Runs the built storage-initializer with `args`, `env` added to the environment and `unset`
// removed from it; status -1 when it did not exit within `timeout`.
InitializerRun runInitializer(std::vector<std::string> args,
                              std::map<std::string, std::string> env = {},
                              std::vector<std::string> unset = {},
                              std::chrono::milliseconds timeout = std::chrono::seconds(120));

// Checks (a test assertion per secret) that none of `secrets` appears in `output`.
void checkNoSecret(const std::string& output, const std::vector<std::string>& secrets);

// The JSON objects of a JSON-lines log a fake writes (none when it wrote no file).
std::vector<nlohmann::json> jsonLines(const std::string& path);

}  // namespace storagetest
