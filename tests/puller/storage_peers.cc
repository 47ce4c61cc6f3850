#include "tests/puller/storage_peers.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "puller/storage/azure.h"
#include "puller/storage/sigv4.h"
#include "puller/storage/util.h"
#include "tests/support/net.h"

namespace storagetest {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {
// No test may send a packet to the EC2 metadata address (169.254.169.254): the credential chain
// ends there when nothing else is configured. Tests of that step set an endpoint on loopback.
[[maybe_unused]] const bool kMetadataOff = [] {
  return setenv("AWS_EC2_METADATA_DISABLED", "true", 0) == 0;
}();
}  // namespace

ScopedEnv::ScopedEnv(std::map<std::string, std::optional<std::string>> values) {
  for (const auto& [name, value] : values) {
    const char* old = std::getenv(name.c_str());
    saved_[name] = old != nullptr ? std::optional<std::string>(old) : std::nullopt;
    if (value) {
      ::setenv(name.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
}

ScopedEnv::~ScopedEnv() {
  for (const auto& [name, value] : saved_) {
    if (value) {
      ::setenv(name.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
}

std::set<std::string> listFiles(const std::string& root) {
  std::set<std::string> files;
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(root, ec)) {
    if (entry.is_regular_file() && !entry.is_symlink()) {
      files.insert(fs::relative(entry.path(), root).generic_string());
    }
  }
  return files;
}

std::set<std::string> listEntries(const std::string& root) {
  std::set<std::string> entries;
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(root, ec)) {
    // Lexically: fs::relative would resolve a link and list its target instead.
    entries.insert(entry.path().lexically_relative(root).generic_string());
  }
  return entries;
}

void writePatternFile(const std::string& path, uint64_t size) {
  std::string block(1 << 20, '\0');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (uint64_t written = 0; written < size;) {
    for (size_t i = 0; i < block.size(); i += 8) {
      const uint64_t offset = written + i;
      std::memcpy(block.data() + i, &offset, sizeof offset);
    }
    uint64_t n = std::min<uint64_t>(block.size(), size - written);
    out.write(block.data(), static_cast<std::streamsize>(n));
    written += n;
  }
}

bool sameContent(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::file_size(a, ec) != fs::file_size(b, ec) || ec) return false;
  std::ifstream left(a, std::ios::binary);
  std::ifstream right(b, std::ios::binary);
  std::string x(1 << 20, '\0');
  std::string y(1 << 20, '\0');
  while (left && right) {
    left.read(x.data(), static_cast<std::streamsize>(x.size()));
    right.read(y.data(), static_cast<std::streamsize>(y.size()));
    if (left.gcount() != right.gcount() ||
        std::memcmp(x.data(), y.data(), static_cast<size_t>(left.gcount())) != 0) {
      return false;
    }
  }
  return left.eof() && right.eof();
}

std::string archiveFixtures() {
  static std::once_flag once;
  static std::string dir;
  std::call_once(once, [] {
    dir = testsupport::makeTempDir("archives");
    testsupport::Process maker({"/usr/bin/env", "python3",
                                testsupport::sourcePath("tests/support/storage_make_archives.py"),
                                dir});
    if (maker.wait(30s) != 0) throw std::runtime_error("archive fixtures: " + maker.output());
  });
  return dir;
}

std::pair<std::string, std::string> selfSignedCertificate() {
  static std::once_flag once;
  static std::pair<std::string, std::string> paths;
  std::call_once(once, [] {
    std::string dir = testsupport::makeTempDir("cert");
    paths = {dir + "/cert.pem", dir + "/key.pem"};
    testsupport::Process openssl({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048",
                                  "-nodes", "-subj", "/CN=127.0.0.1", "-addext",
                                  "subjectAltName=IP:127.0.0.1", "-days", "2", "-keyout",
                                  paths.second, "-out", paths.first});
    if (openssl.wait(30s) != 0) throw std::runtime_error("openssl: " + openssl.output());
  });
  return paths;
}

long httpPut(const std::string& url, const std::map<std::string, std::string>& headers,
             const std::string& bodyOrPath, bool isPath, const std::string& caFile) {
  CURL* curl = curl_easy_init();
  if (!caFile.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, caFile.c_str());
  curl_slist* list = nullptr;
  for (const auto& [name, value] : headers) {
    list = curl_slist_append(list, (name + ": " + value).c_str());
  }
  list = curl_slist_append(list, "Expect:");
  FILE* file = nullptr;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
  if (isPath) {
    file = std::fopen(bodyOrPath.c_str(), "rb");
    curl_easy_setopt(curl, CURLOPT_READDATA, file);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
                     static_cast<curl_off_t>(fs::file_size(bodyOrPath)));
  } else {
    file = fmemopen(const_cast<char*>(bodyOrPath.data()), bodyOrPath.size(), "rb");
    curl_easy_setopt(curl, CURLOPT_READDATA, file);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(bodyOrPath.size()));
  }
  curl_easy_setopt(
      curl, CURLOPT_WRITEFUNCTION,
      +[](char*, size_t size, size_t count, void*) { return size * count; });
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
  long status = 0;
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  }
  if (file != nullptr) std::fclose(file);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  return status;
}

namespace {

std::string nodeBin(const std::string& name) {
  return testsupport::sourcePath("tests/support/node_modules/.bin/" + name);
}

}  // namespace

S3rver::S3rver(const std::string& bucket) : bucket_(bucket), port_(testsupport::freePort()) {
  std::string dir = testsupport::makeTempDir("s3rver");
  process_ = std::make_unique<testsupport::Process>(std::vector<std::string>{
      nodeBin("s3rver"), "--directory", dir, "--address", "127.0.0.1", "--port",
      std::to_string(port_), "--silent", "--configure-bucket", bucket});
  if (!testsupport::waitForPort(port_, 20s)) {
    throw std::runtime_error("s3rver did not start: " + process_->output());
  }
}

void S3rver::put(const std::string& key, const std::string& content, bool isPath) {
  std::string host = "127.0.0.1:" + std::to_string(port_);
  std::string path = "/" + bucket_ + "/" + storage::percentEncode(key, true);
  storage::sigv4::Request request;
  request.method = "PUT";
  request.canonicalUri = path;
  request.payloadHash = "UNSIGNED-PAYLOAD";
  std::string date = storage::sigv4::amzDateNow();
  request.headers = {
      {"host", host}, {"x-amz-content-sha256", "UNSIGNED-PAYLOAD"}, {"x-amz-date", date}};
  std::string authorization =
      storage::sigv4::authorization(request, {kAccessKey, kSecretKey, ""}, "us-east-1", "s3", date);
  long status = httpPut("http://" + host + path,
                        {{"x-amz-content-sha256", "UNSIGNED-PAYLOAD"},
                         {"x-amz-date", date},
                         {"Authorization", authorization}},
                        content, isPath);
  if (status != 200) throw std::runtime_error("s3rver PUT " + key + ": " + std::to_string(status));
}

std::map<std::string, std::optional<std::string>> S3rver::env() const {
  return {{"AWS_ENDPOINT_URL", endpoint()},        {"AWS_ACCESS_KEY_ID", kAccessKey},
          {"AWS_SECRET_ACCESS_KEY", kSecretKey},   {"AWS_REGION", "us-east-1"},
          {"S3_ENDPOINT", std::nullopt},           {"S3_USER_VIRTUAL_BUCKET", std::nullopt},
          {"awsAnonymousCredential", std::nullopt}};
}

Azurite::Azurite(bool oauth) : port_(testsupport::freePort()), oauth_(oauth) {
  std::string dir = testsupport::makeTempDir("azurite");
  std::vector<std::string> argv{
      nodeBin("azurite-blob"), "--blobHost",        "127.0.0.1", "--blobPort",
      std::to_string(port_),   "--location",        dir,         "--silent",
      "--skipApiVersionCheck", "--disableTelemetry"};
  if (oauth) {
    auto [cert, key] = selfSignedCertificate();
    argv.insert(argv.end(), {"--oauth", "basic", "--cert", cert, "--key", key});
  }
  process_ = std::make_unique<testsupport::Process>(argv);
  if (!testsupport::waitForPort(port_, 30s)) {
    throw std::runtime_error("azurite did not start: " + process_->output());
  }
}

std::string Azurite::endpoint() const {
  return std::string(oauth_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + "/" +
         kAccount;
}

namespace {

long azurePut(const std::string& origin, const std::string& path,
              std::vector<std::pair<std::string, std::string>> query,
              std::map<std::string, std::string> headers, const std::string& content, bool isPath) {
  uint64_t length = isPath ? fs::file_size(content) : content.size();
  headers["x-ms-date"] = storage::azure::httpDateNow();
  headers["x-ms-version"] = storage::azure::kApiVersion;
  std::map<std::string, std::string> signedHeaders = headers;
  signedHeaders["content-length"] = std::to_string(length);
  headers["Authorization"] = storage::azure::sharedKeyAuthorization(
      Azurite::kAccount, Azurite::kKey, "PUT", path, query, signedHeaders);
  std::string queryText = storage::formEncode(query);
  return httpPut(origin + path + (queryText.empty() ? "" : "?" + queryText), headers, content,
                 isPath, origin.starts_with("https") ? selfSignedCertificate().first : "");
}

}  // namespace

void Azurite::createContainer(const std::string& container) {
  const std::string origin = endpoint().substr(0, endpoint().rfind('/'));
  long status = azurePut(origin, "/" + std::string(kAccount) + "/" + container,
                         {{"restype", "container"}}, {}, "", false);
  if (status != 201)
    throw std::runtime_error("azurite create container: " + std::to_string(status));
}

void Azurite::put(const std::string& container, const std::string& blob, const std::string& content,
                  bool isPath) {
  long status = azurePut(
      endpoint().substr(0, endpoint().rfind('/')),
      "/" + std::string(kAccount) + "/" + container + "/" + storage::percentEncode(blob, true), {},
      {{"x-ms-blob-type", "BlockBlob"}}, content, isPath);
  if (status != 201)
    throw std::runtime_error("azurite put " + blob + ": " + std::to_string(status));
}

Nginx::Nginx()
    : httpPort_(testsupport::freePort()),
      httpsPort_(testsupport::freePort()),
      prefix_(testsupport::makeTempDir("nginx")) {
  const std::string& prefix = prefix_;
  root_ = prefix + "/www";
  fs::create_directories(root_);
  auto [cert, key] = selfSignedCertificate();
  cert_ = cert;
  std::string conf =
      testsupport::readFile(testsupport::sourcePath("tests/support/storage_nginx.conf.in"));
  auto replace = [&](const std::string& from, const std::string& to) {
    for (size_t pos; (pos = conf.find(from)) != std::string::npos;)
      conf.replace(pos, from.size(), to);
  };
  replace("@PREFIX@", prefix);
  replace("@ROOT@", root_);
  replace("@HTTP_PORT@", std::to_string(httpPort_));
  replace("@HTTPS_PORT@", std::to_string(httpsPort_));
  replace("@CERT@", cert);
  replace("@KEY@", key);
  testsupport::writeFile(prefix + "/nginx.conf", conf);
  process_ = std::make_unique<testsupport::Process>(
      std::vector<std::string>{"/usr/sbin/nginx", "-p", prefix, "-c", prefix + "/nginx.conf"});
  if (!testsupport::waitForPort(httpPort_, 15s) || !testsupport::waitForPort(httpsPort_, 15s)) {
    throw std::runtime_error("nginx did not start: " + process_->output());
  }
}

std::string Nginx::accessLog() const {
  return fs::exists(prefix_ + "/access.log") ? testsupport::readFile(prefix_ + "/access.log") : "";
}

std::string Nginx::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(httpPort_) + path;
}

std::string Nginx::httpsUrl(const std::string& path) const {
  return "https://127.0.0.1:" + std::to_string(httpsPort_) + path;
}

FakeGcs::FakeGcs(std::vector<std::string> extraArgs)
    : port_(testsupport::freePort()), root_(testsupport::makeTempDir("gcs")) {
  std::vector<std::string> argv{"/usr/bin/env",
                                "python3",
                                testsupport::sourcePath("tests/support/storage_fake_gcs.py"),
                                "--port",
                                std::to_string(port_),
                                "--root",
                                root_};
  argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
  process_ = std::make_unique<testsupport::Process>(argv);
  if (!testsupport::waitForPort(port_, 15s)) {
    throw std::runtime_error("fake GCS did not start: " + process_->output());
  }
}

FakeHf::FakeHf(std::vector<std::string> extraArgs)
    : port_(testsupport::freePort()), root_(testsupport::makeTempDir("hf")) {
  std::vector<std::string> argv{"/usr/bin/env",
                                "python3",
                                testsupport::sourcePath("tests/support/storage_fake_hf.py"),
                                "--port",
                                std::to_string(port_),
                                "--root",
                                root_};
  argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
  process_ = std::make_unique<testsupport::Process>(argv);
  if (!testsupport::waitForPort(port_, 15s)) {
    throw std::runtime_error("fake HF did not start: " + process_->output());
  }
}

FakeAwsCredentials::FakeAwsCredentials(const std::string& accessKey, const std::string& secretKey,
                                       int lifetime, std::vector<std::string> extraArgs)
    : port_(testsupport::freePort()), dir_(testsupport::makeTempDir("aws-creds")) {
  webIdentityTokenFile_ = dir_ + "/web-identity-token";
  containerTokenFile_ = dir_ + "/eks-pod-identity-token";
  testsupport::writeFile(webIdentityTokenFile_, "eyJ.projected-sa-token.one\n");
  testsupport::writeFile(containerTokenFile_, "pod-identity-token-one\n");
  std::vector<std::string> argv{
      "/usr/bin/env",
      "python3",
      testsupport::sourcePath("tests/support/storage_fake_aws_credentials.py"),
      "--port",
      std::to_string(port_),
      "--access-key",
      accessKey,
      "--secret-key",
      secretKey,
      "--lifetime",
      std::to_string(lifetime),
      "--role-arn",
      kRoleArn,
      "--web-identity-token-file",
      webIdentityTokenFile_,
      "--container-token-file",
      containerTokenFile_,
      "--log",
      dir_ + "/requests.jsonl"};
  argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
  process_ = std::make_unique<testsupport::Process>(argv);
  if (!testsupport::waitForPort(port_, 15s)) {
    throw std::runtime_error("fake AWS credentials did not start: " + process_->output());
  }
}

std::vector<std::string> FakeAwsCredentials::requests() const {
  std::vector<std::string> lines;
  std::ifstream in(dir_ + "/requests.jsonl");
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

BotocoreS3::BotocoreS3(const std::string& accessKey, const std::string& secretKey,
                       const std::string& sessionToken, const std::string& tlsCert,
                       const std::string& tlsKey, std::vector<std::string> extraArgs)
    : port_(testsupport::freePort()),
      root_(testsupport::makeTempDir("botocore-s3")),
      tls_(!tlsCert.empty()) {
  log_ = root_ + "/requests.jsonl";
  std::vector<std::string> argv{"/usr/bin/env",
                                "python3",
                                testsupport::sourcePath("tests/support/storage_botocore_s3.py"),
                                "--port",
                                std::to_string(port_),
                                "--root",
                                root_,
                                "--access-key",
                                accessKey,
                                "--secret-key",
                                secretKey,
                                "--session-token",
                                sessionToken,
                                "--log",
                                log_};
  if (tls_) {
    argv.insert(argv.end(), {"--cert", tlsCert, "--key", tlsKey});
  }
  argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
  process_ = std::make_unique<testsupport::Process>(argv);
  if (!testsupport::waitForPort(port_, 15s)) {
    throw std::runtime_error("botocore S3 did not start: " + process_->output());
  }
}

std::vector<std::string> BotocoreS3::requests() const {
  std::vector<std::string> lines;
  std::ifstream in(log_);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::map<std::string, std::optional<std::string>> awsChainOff() {
  std::map<std::string, std::optional<std::string>> vars;
  for (const char* name : {"AWS_ACCESS_KEY_ID",
                           "AWS_SECRET_ACCESS_KEY",
                           "AWS_SESSION_TOKEN",
                           "AWS_ROLE_ARN",
                           "AWS_WEB_IDENTITY_TOKEN_FILE",
                           "AWS_ROLE_SESSION_NAME",
                           "AWS_ENDPOINT_URL_STS",
                           "AWS_STS_REGIONAL_ENDPOINTS",
                           "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                           "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                           "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                           "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                           "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                           "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
                           "AWS_EC2_METADATA_V1_DISABLED",
                           "AWS_METADATA_SERVICE_TIMEOUT",
                           "AWS_METADATA_SERVICE_NUM_ATTEMPTS",
                           "awsAnonymousCredential",
                           "AWS_PROFILE",
                           "AWS_DEFAULT_PROFILE"}) {
    vars[name] = std::nullopt;
  }
  vars["AWS_EC2_METADATA_DISABLED"] = "true";
  // A developer's ~/.aws must not answer for the chain under test.
  vars["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/aws/credentials";
  vars["AWS_CONFIG_FILE"] = "/nonexistent/aws/config";
  return vars;
}

std::map<std::string, std::optional<std::string>> FakeAwsCredentials::env(
    const std::string& step) const {
  auto vars = awsChainOff();
  if (step == "web identity") {
    vars["AWS_ROLE_ARN"] = kRoleArn;
    vars["AWS_WEB_IDENTITY_TOKEN_FILE"] = webIdentityTokenFile_;
    vars["AWS_ENDPOINT_URL_STS"] = endpoint();
  } else if (step == "container") {
    vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = endpoint() + "/v1/credentials";
    vars["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = containerTokenFile_;
  } else if (step == "imds") {
    vars["AWS_EC2_METADATA_DISABLED"] = std::nullopt;
    vars["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = endpoint();
  } else {
    throw std::invalid_argument("unknown AWS chain step " + step);
  }
  return vars;
}

PythonFake::PythonFake(const std::string& script, std::vector<std::string> args)
    : port_(testsupport::freePort()) {
  std::vector<std::string> argv{"/usr/bin/env", "python3",
                                testsupport::sourcePath("tests/support/" + script), "--port",
                                std::to_string(port_)};
  argv.insert(argv.end(), args.begin(), args.end());
  process_ = std::make_unique<testsupport::Process>(argv);
  if (!testsupport::waitForPort(port_, 15s)) {
    throw std::runtime_error(script + " did not start: " + process_->output());
  }
}

InitializerRun runInitializer(std::vector<std::string> args, std::map<std::string, std::string> env,
                              std::vector<std::string> unset, std::chrono::milliseconds timeout) {
  args.insert(args.begin(), testsupport::builtBinary("storage-initializer"));
  testsupport::Process process(args, std::move(env), std::move(unset));
  int status = process.wait(timeout);
  return {status, process.output()};
}

void checkNoSecret(const std::string& output, const std::vector<std::string>& secrets) {
  for (const auto& secret : secrets) {
    INFO(secret);
    CHECK_THAT(output, !Catch::Contains(secret));
  }
}

std::vector<nlohmann::json> jsonLines(const std::string& path) {
  std::vector<nlohmann::json> lines;
  if (!fs::exists(path)) return lines;
  std::istringstream in(testsupport::readFile(path));
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

}  // namespace storagetest
