// CA bundles added to the trust store (the CA bundle ConfigMap, AWS_CA_BUNDLE) rather than
// replacing it, S3_VERIFY_SSL=0, and proxies as Go users expect: HTTP_PROXY in capitals for
// http:// URLs, loopback never proxied (the puller's load/unload calls). Peers: the botocore S3
// over https with a certificate from a test CA, nginx over https with a self-signed certificate
// that plays the system store (SSL_CERT_FILE, as Go and OpenSSL read it), nginx as the proxy.
#include <catch2/catch.hpp>
#include <filesystem>

#include "puller/storage/http_client.h"
#include "tests/puller/storage_peers.h"
#include "tests/support/net.h"
#include "tests/support/pki.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using storagetest::BotocoreS3;
using storagetest::Nginx;
using storagetest::ScopedEnv;
using Vars = std::map<std::string, std::optional<std::string>>;
using namespace std::chrono_literals;

using Run = storagetest::InitializerRun;
using storagetest::runInitializer;

namespace {

constexpr const char* kAccessKey = "AKIDTLS";
constexpr const char* kSecret = "tls-secret-Pw2";

// A private-CA S3 (the test CA signs its certificate) and an https file server whose
// self-signed certificate is the "system store".
struct TlsPeers {
  std::string dir = testsupport::makeTempDir("tls");
  testsupport::TestPki pki = testsupport::makeTestPki(dir);
  BotocoreS3 s3{kAccessKey, kSecret, "", pki.serverCert, pki.serverKey};
  Nginx nginx;
  std::string mount = dir + "/custom-certs";

  TlsPeers() {
    fs::create_directories(s3.root() + "/models/m");
    testsupport::writeFile(s3.root() + "/models/m/w.bin", "weights");
    testsupport::writeFile(nginx.root() + "/config.json", "{}");
    fs::create_directories(mount);
  }

  Vars env() const {
    Vars vars = storagetest::awsChainOff();
    vars["AWS_ENDPOINT_URL"] = s3.endpoint();
    vars["AWS_ACCESS_KEY_ID"] = kAccessKey;
    vars["AWS_SECRET_ACCESS_KEY"] = kSecret;
    vars["AWS_REGION"] = "us-east-1";
    vars["SSL_CERT_FILE"] = nginx.caFile();
    for (const char* name : {"S3_ENDPOINT", "S3_USER_VIRTUAL_BUCKET", "S3_VERIFY_SSL",
                             "AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CA_BUNDLE_CONFIGMAP_NAME",
                             "CA_BUNDLE_VOLUME_MOUNT_POINT", "STORAGE_CONFIG"}) {
      vars[name] = std::nullopt;
    }
    return vars;
  }
};

}  // namespace

TEST_CASE("CA bundles extend the trust store: the ConfigMap bundle, AWS_CA_BUNDLE",
          "[storage][tls][initializer]") {
  TlsPeers peers;
  std::string out = peers.dir + "/out";
  // Both pairs in one run: the private-CA S3 and the "system"-trusted https server.
  std::vector<std::string> args{"s3://models/m", out + "/s3", peers.nginx.httpsUrl("/config.json"),
                                out + "/https"};
  SECTION("without the private CA the S3 certificate is refused") {
    ScopedEnv env(peers.env());
    Run result = runInitializer(args);
    CHECK(result.status == 1);
    CHECK_THAT(result.output, Catch::Contains("s3://models/m: unable to list objects: GET " +
                                              peers.s3.endpoint() + "/models?<redacted>: "));
  }
  SECTION("CA_BUNDLE_CONFIGMAP_NAME: cabundle.crt in the mount point") {
    fs::copy_file(peers.pki.caCert, peers.mount + "/cabundle.crt");
    Vars vars = peers.env();
    vars["CA_BUNDLE_CONFIGMAP_NAME"] = "odh-trusted-ca-bundle";
    vars["CA_BUNDLE_VOLUME_MOUNT_POINT"] = peers.mount + "/";
    ScopedEnv env(vars);
    Run result = runInitializer(args);
    INFO(result.output);
    CHECK(result.status == 0);
    CHECK(testsupport::readFile(out + "/s3/w.bin") == "weights");
    CHECK(testsupport::readFile(out + "/https/config.json") == "{}");
  }
  SECTION("AWS_CA_BUNDLE") {
    Vars vars = peers.env();
    vars["AWS_CA_BUNDLE"] = peers.pki.caCert;
    ScopedEnv env(vars);
    Run result = runInitializer(args);
    INFO(result.output);
    CHECK(result.status == 0);
    CHECK(testsupport::readFile(out + "/s3/w.bin") == "weights");
    CHECK(testsupport::readFile(out + "/https/config.json") == "{}");
  }
  SECTION("S3_VERIFY_SSL=0 still skips verification") {
    Vars vars = peers.env();
    vars["S3_VERIFY_SSL"] = "0";
    ScopedEnv env(vars);
    Run result = runInitializer({"s3://models/m", out + "/s3"});
    INFO(result.output);
    CHECK(result.status == 0);
    CHECK(testsupport::readFile(out + "/s3/w.bin") == "weights");
  }
  SECTION("a ConfigMap bundle that is not there fails at once, naming it") {
    Vars vars = peers.env();
    vars["CA_BUNDLE_CONFIGMAP_NAME"] = "odh-trusted-ca-bundle";
    vars["CA_BUNDLE_VOLUME_MOUNT_POINT"] = peers.mount;
    ScopedEnv env(vars);
    Run result = runInitializer(args);
    CHECK(result.status == 1);
    CHECK_THAT(result.output,
               Catch::Contains("storage-initializer: failed to download s3://models/m: "
                               "s3://models/m: cannot read the CA bundle " +
                               peers.mount +
                               "/cabundle.crt (CA_BUNDLE_CONFIGMAP_NAME=odh-trusted-ca-bundle)\n"));
  }
  SECTION("an AWS_CA_BUNDLE that is not there fails, naming it") {
    Vars vars = peers.env();
    vars["AWS_CA_BUNDLE"] = peers.dir + "/missing.pem";
    ScopedEnv env(vars);
    Run result = runInitializer(args);
    CHECK(result.status == 1);
    CHECK_THAT(result.output, Catch::Contains("s3://models/m: cannot read the CA bundle " +
                                              peers.dir + "/missing.pem (AWS_CA_BUNDLE)\n"));
  }
}

namespace {

// nginx as a forward proxy for plain http: it answers absolute-URI requests by passing them to
// `backendPort` on loopback, and logs each request line it proxied.
class ProxyNginx {
 public:
  explicit ProxyNginx(uint16_t backendPort) : port_(testsupport::freePort()) {
    prefix_ = testsupport::makeTempDir("proxy");
    std::string conf =
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid " + prefix_ +
        "/nginx.pid;\nerror_log stderr warn;\nevents { worker_connections 64; }\n"
        "http {\n  client_body_temp_path " +
        prefix_ + "/body;\n  proxy_temp_path " + prefix_ + "/proxy;\n  fastcgi_temp_path " +
        prefix_ + "/fastcgi;\n  uwsgi_temp_path " + prefix_ + "/uwsgi;\n  scgi_temp_path " +
        prefix_ + "/scgi;\n  log_format line '$request';\n  access_log " + prefix_ +
        "/access.log line;\n  server {\n    listen 127.0.0.1:" + std::to_string(port_) +
        ";\n    location / { proxy_pass http://127.0.0.1:" + std::to_string(backendPort) +
        "; }\n  }\n}\n";
    testsupport::writeFile(prefix_ + "/nginx.conf", conf);
    process_ = std::make_unique<testsupport::Process>(
        std::vector<std::string>{"/usr/sbin/nginx", "-p", prefix_, "-c", prefix_ + "/nginx.conf"});
    if (!testsupport::waitForPort(port_, 15s)) {
      throw std::runtime_error("proxy nginx did not start: " + process_->output());
    }
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const {
    return fs::exists(prefix_ + "/access.log") ? testsupport::readFile(prefix_ + "/access.log")
                                               : "";
  }

 private:
  uint16_t port_;
  std::string prefix_;
  std::unique_ptr<testsupport::Process> process_;
};

Vars proxyOff() {
  Vars vars;
  for (const char* name : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy",
                           "NO_PROXY", "all_proxy", "ALL_PROXY", "REQUEST_METHOD"}) {
    vars[name] = std::nullopt;
  }
  return vars;
}

}  // namespace

TEST_CASE("Proxies: HTTP_PROXY in capitals carries http:// downloads, as in Go and Python",
          "[storage][proxy][initializer]") {
  Nginx files;
  testsupport::writeFile(files.root() + "/model.bin", "via proxy");
  ProxyNginx proxy(files.httpPort());
  Vars vars = proxyOff();
  vars["HTTP_PROXY"] = proxy.url();
  ScopedEnv env(vars);
  std::string dir = testsupport::makeTempDir("proxy-out");
  // A name only the proxy can reach: nothing resolves it here, so success means the proxy
  // carried the request.
  std::string url =
      "http://models.example.invalid:" + std::to_string(files.httpPort()) + "/model.bin";
  Run result = runInitializer({url, dir + "/out"});
  INFO(result.output);
  CHECK(result.status == 0);
  CHECK(testsupport::readFile(dir + "/out/model.bin") == "via proxy");
  CHECK_THAT(proxy.log(), Catch::Contains("GET " + url + " HTTP/1.1"));
}

TEST_CASE("Proxies: loopback is never proxied (storage and the puller's load/unload calls)",
          "[storage][proxy]") {
  Nginx files;
  testsupport::writeFile(files.root() + "/model.bin", "direct");
  ProxyNginx proxy(files.httpPort());
  Vars vars = proxyOff();
  vars["http_proxy"] = proxy.url();
  vars["HTTP_PROXY"] = proxy.url();
  vars["all_proxy"] = proxy.url();
  ScopedEnv env(vars);
  for (const std::string host : {"127.0.0.1", "localhost", "[::1]"}) {
    storage::HttpRequest request;
    request.url = "http://" + host + ":" + std::to_string(files.httpPort()) + "/model.bin";
    storage::HttpResponse response = storage::httpFetch(request);
    INFO(host << " " << response.error);
    CHECK(response.status == 200);
    CHECK(response.body == "direct");
  }
  CHECK(proxy.log().empty());
}
