// The storage-initializer binary against the sources beyond the object stores: web pages where a
// model was expected, git repositories, HDFS, and the allow/ignore patterns.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>

#include "puller/storage/git.h"
#include "puller/storage/patterns.h"
#include "puller/storage/util.h"
#include "tests/puller/pull_models.h"
#include "tests/puller/storage_peers.h"
#include "tests/support/net.h"
#include "tests/support/peers.h"
#include "tests/support/pki.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Files = std::set<std::string>;

using Run = storagetest::InitializerRun;
using storagetest::runInitializer;

namespace {

// How many times `needle` occurs in `text`.
size_t occurrences(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t pos = 0; (pos = text.find(needle, pos)) != std::string::npos; pos += needle.size())
    ++count;
  return count;
}

// Real git servers on loopback over the repositories of tests/support/storage_git.py:
// `git daemon` (git://) and `git http-backend` behind nginx through fcgiwrap (http://, anonymous
// under /git/ and HTTP Basic under /private/), with the LFS batch API answered by the fake in the
// same script (Debian has no LFS server).
class GitServers {
 public:
  static constexpr const char* kUser = "modeluser";
  static constexpr const char* kPassword = "s3cret-Pa55";

  GitServers()
      : root_(testsupport::makeTempDir("git")),
        httpPort_(testsupport::freePort()),
        daemonPort_(testsupport::freePort()),
        lfsPort_(testsupport::freePort()) {
    std::string script = testsupport::sourcePath("tests/support/storage_git.py");
    testsupport::Process make({"/usr/bin/env", "python3", script, "make", root_});
    if (make.wait(60s) != 0) throw std::runtime_error("git fixtures: " + make.output());
    lfs_ = std::make_unique<testsupport::Process>(std::vector<std::string>{
        "/usr/bin/env", "python3", script, "lfs", "--port", std::to_string(lfsPort_), "--objects",
        root_ + "/lfs", "--log", lfsLog()});
    std::string socket = root_ + "/fcgi.sock";
    fcgi_ = std::make_unique<testsupport::Process>(
        std::vector<std::string>{"/usr/sbin/fcgiwrap", "-s", "unix:" + socket});
    testsupport::Process passwd({"/usr/bin/openssl", "passwd", "-apr1", kPassword});
    if (passwd.wait(10s) != 0) throw std::runtime_error("openssl passwd: " + passwd.output());
    testsupport::writeFile(root_ + "/htpasswd",
                           std::string(kUser) + ":" + storage::trim(passwd.output()) + "\n");
    std::string conf =
        testsupport::readFile(testsupport::sourcePath("tests/support/storage_git_nginx.conf.in"));
    auto replace = [&](const std::string& from, const std::string& to) {
      for (size_t pos; (pos = conf.find(from)) != std::string::npos;)
        conf.replace(pos, from.size(), to);
    };
    replace("@PREFIX@", root_);
    replace("@REPOS@", root_ + "/repos");
    replace("@HTTP_PORT@", std::to_string(httpPort_));
    replace("@LFS_PORT@", std::to_string(lfsPort_));
    replace("@SOCKET@", socket);
    replace("@HTPASSWD@", root_ + "/htpasswd");
    testsupport::writeFile(root_ + "/nginx.conf", conf);
    for (int i = 0; i < 100 && !fs::exists(socket); ++i)
      ::usleep(50000);
    nginx_ = std::make_unique<testsupport::Process>(
        std::vector<std::string>{"/usr/sbin/nginx", "-p", root_, "-c", root_ + "/nginx.conf"});
    daemon_ = std::make_unique<testsupport::Process>(std::vector<std::string>{
        "/usr/bin/git", "daemon", "--export-all", "--reuseaddr", "--informative-errors",
        "--listen=127.0.0.1", "--port=" + std::to_string(daemonPort_),
        "--base-path=" + root_ + "/repos", root_ + "/repos"});
    if (!testsupport::waitForPort(httpPort_, 15s) || !testsupport::waitForPort(daemonPort_, 15s) ||
        !testsupport::waitForPort(lfsPort_, 15s) || !fs::exists(socket)) {
      throw std::runtime_error("git servers did not start: " + nginx_->output() +
                               daemon_->output() + lfs_->output() + fcgi_->output());
    }
  }

  std::string http(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(httpPort_) + path;
  }
  std::string daemon(const std::string& path) const {
    return "git://127.0.0.1:" + std::to_string(daemonPort_) + path;
  }
  std::string lfsLog() const { return root_ + "/lfs.log"; }
  // The commit a ref of a served repository points at.
  std::string commitOf(const std::string& repo, const std::string& ref) const {
    testsupport::Process revParse(
        {"/usr/bin/git", "--git-dir=" + root_ + "/repos/" + repo, "rev-parse", ref + "^{commit}"});
    if (revParse.wait(10s) != 0) throw std::runtime_error("rev-parse: " + revParse.output());
    return storage::trim(revParse.output());
  }

 private:
  std::string root_;
  uint16_t httpPort_;
  uint16_t daemonPort_;
  uint16_t lfsPort_;
  std::unique_ptr<testsupport::Process> lfs_;
  std::unique_ptr<testsupport::Process> fcgi_;
  std::unique_ptr<testsupport::Process> nginx_;
  std::unique_ptr<testsupport::Process> daemon_;
};

// The variables a developer's shell may hold that would change what git does.
const std::vector<std::string> kGitUnset{"GIT_USERNAME",        "GIT_PASSWORD", "127.0.0.1-headers",
                                         "STORAGE_GIT_TIMEOUT", "GIT_DIR",      "GIT_WORK_TREE"};

// tests/support/storage_fake_webhdfs.py: a namenode and a datanode over the files below root().
class FakeWebHdfs {
 public:
  // SPNEGO needs Debian's python3 (python3-gssapi), whatever python3 comes first in PATH.
  explicit FakeWebHdfs(std::vector<std::string> extraArgs = {},
                       const std::string& python = "python3")
      : root_(testsupport::makeTempDir("hdfs")),
        namenodePort_(testsupport::freePort()),
        datanodePort_(testsupport::freePort()) {
    fs::create_directories(root_ + "/fs");
    std::vector<std::string> argv{"/usr/bin/env",
                                  python,
                                  testsupport::sourcePath("tests/support/storage_fake_webhdfs.py"),
                                  "--namenode-port",
                                  std::to_string(namenodePort_),
                                  "--datanode-port",
                                  std::to_string(datanodePort_),
                                  "--root",
                                  root_ + "/fs",
                                  "--log",
                                  log()};
    argv.insert(argv.end(), extraArgs.begin(), extraArgs.end());
    process_ = std::make_unique<testsupport::Process>(argv);
    if (!testsupport::waitForPort(namenodePort_, 15s) ||
        !testsupport::waitForPort(datanodePort_, 15s)) {
      throw std::runtime_error("fake WebHDFS did not start: " + process_->output());
    }
  }
  std::string fsRoot() const { return root_ + "/fs"; }
  std::string authority() const { return "127.0.0.1:" + std::to_string(namenodePort_); }
  std::string log() const { return root_ + "/requests.log"; }
  // The logged requests, one JSON object per line.
  std::vector<std::string> requests() const {
    std::vector<std::string> lines;
    std::string text = testsupport::readFile(log());
    for (size_t start = 0, end; (end = text.find('\n', start)) != std::string::npos;
         start = end + 1)
      lines.push_back(text.substr(start, end - start));
    return lines;
  }
  void write(const std::string& path, const std::string& content) const {
    fs::create_directories(fs::path(fsRoot() + path).parent_path());
    testsupport::writeFile(fsRoot() + path, content);
  }

 private:
  std::string root_;
  uint16_t namenodePort_;
  uint16_t datanodePort_;
  std::unique_ptr<testsupport::Process> process_;
};

// A client certificate signed by the CA of makeTestPki(dir): {cert, key}.
std::pair<std::string, std::string> makeClientCertificate(const std::string& dir) {
  std::string key = dir + "/client.key";
  std::string csr = dir + "/client.csr";
  std::string cert = dir + "/client.crt";
  testsupport::writeFile(dir + "/client.ext", "extendedKeyUsage=clientAuth\n");
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"/usr/bin/openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", "/CN=hdfs-client"},
           {"/usr/bin/openssl", "x509", "-req", "-in", csr, "-CA", dir + "/ca.crt", "-CAkey",
            dir + "/ca.key", "-CAcreateserial", "-out", cert, "-days", "2", "-extfile",
            dir + "/client.ext"}}) {
    testsupport::Process openssl(argv);
    if (openssl.wait(60s) != 0) throw std::runtime_error("openssl: " + openssl.output());
  }
  return {cert, key};
}

std::string expectedWeights() {
  std::string out(300000, '\0');
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<char>((i * 31 + 7) & 0xFF);
  return out;
}

}  // namespace

TEST_CASE("storage-initializer refuses an HTML page where a model file was expected",
          "[storage][initializer][http]") {
  storagetest::Nginx nginx;
  std::string root = nginx.root();
  fs::create_directories(root + "/site/repo");
  // What a forge answers for a repository's page: a full HTML document, served as text/html.
  testsupport::writeFile(root + "/site/repo/index.html",
                         "<!DOCTYPE html>\n<html><head><title>repo</title></head></html>\n");
  // The same page under a name nginx serves as application/octet-stream: caught by its start.
  testsupport::writeFile(root + "/site/model.bin", "\n  <html><body>Sign in</body></html>\n");
  testsupport::writeFile(root + "/site/real.bin", "<not html> weights");
  testsupport::writeFile(root + "/site/page.html", "<html></html>");
  std::string dir = testsupport::makeTempDir("html");

  for (const std::string path : {"/site/repo", "/site/model.bin"}) {
    INFO(path);
    Run result = runInitializer({nginx.url(path), dir + "/out"});
    INFO(result.output);
    CHECK(result.status == 1);
    CHECK_THAT(result.output, Catch::Contains("failed to download " + nginx.url(path)) &&
                                  Catch::Contains("answered with an HTML page, not a model file"));
    CHECK(occurrences(result.output, "failed to download") == 1);
    // Nothing of the page is left where the model was to be.
    CHECK(storagetest::listFiles(dir + "/out").empty());
  }
  // A repository URI on a web server that is no git server (GitHub's answer for a repository
  // page is HTML): git fails, and no page is saved as the model.
  fs::create_directories(root + "/site/repo.git");
  testsupport::writeFile(root + "/site/repo.git/index.html", "<!DOCTYPE html><html></html>");
  Run repo = runInitializer({nginx.url("/site/repo.git"), dir + "/repo"});
  INFO(repo.output);
  CHECK(repo.status == 1);
  CHECK_THAT(repo.output, Catch::Contains("git fetch failed") && Catch::Contains("not found"));
  CHECK(storagetest::listEntries(dir + "/repo").empty());

  // A body that only starts with '<', and a file the URI names as HTML, are kept.
  Run real = runInitializer(
      {nginx.url("/site/real.bin"), dir + "/real", nginx.url("/site/page.html"), dir + "/real"});
  INFO(real.output);
  CHECK(real.status == 0);
  CHECK(storagetest::listFiles(dir + "/real") == Files{"real.bin", "page.html"});
}

TEST_CASE("git URIs: which are git, and how they split into remote, user and ref",
          "[storage][git]") {
  using storage::git::isGitUri;
  CHECK(isGitUri("https://github.com/user/repo.git"));
  CHECK(isGitUri("https://github.com/user/repo.git/"));
  CHECK(isGitUri("http://host:8080/r/repo.git@v1.0"));
  CHECK(isGitUri("git://host/user/repo"));
  CHECK_FALSE(isGitUri("https://user.github.io/model.bin"));
  CHECK_FALSE(isGitUri("https://host/files/model.gitx"));
  CHECK_FALSE(isGitUri("https://host/files/model.bin?x=.git"));
  CHECK_FALSE(isGitUri("s3://bucket/repo.git"));

  std::string problem;
  auto plain = storage::git::parseGitUri("https://u:p@host:9/a/repo.git?q=1", problem);
  REQUIRE(plain);
  CHECK(plain->remote == "https://host:9/a/repo.git");
  CHECK(plain->username == "u");
  CHECK(plain->password == "p");
  CHECK(plain->ref.empty());
  auto branch = storage::git::parseGitUri("https://host/repo.git@feature/x", problem);
  REQUIRE(branch);
  CHECK(branch->remote == "https://host/repo.git");
  CHECK(branch->ref == "feature/x");
  auto daemon = storage::git::parseGitUri("git://host/user/repo@v2", problem);
  REQUIRE(daemon);
  CHECK(daemon->remote == "git://host/user/repo");
  CHECK(daemon->ref == "v2");
  for (const char* bad : {"https://host/repo.git@", "https://host/repo.git@--upload-pack=x",
                          "https://host/repo.git@a..b", "git://host", "git:///repo"}) {
    INFO(bad);
    CHECK_FALSE(storage::git::parseGitUri(bad, problem));
    CHECK_FALSE(problem.empty());
  }
}

TEST_CASE("storage-initializer clones git repositories over http with LFS files, at a ref",
          "[storage][initializer][git]") {
  GitServers servers;
  std::string dir = testsupport::makeTempDir("gitout");

  SECTION("the default branch, shallow, LFS objects fetched, no .git left") {
    Run result = runInitializer({servers.http("/git/model.git"), dir + "/main"}, {}, kGitUnset);
    INFO(result.output);
    REQUIRE(result.status == 0);
    CHECK(storagetest::listEntries(dir + "/main") ==
          Files{".gitattributes", "config.json", "tok", "tok/vocab.txt", "weights.bin"});
    CHECK(testsupport::readFile(dir + "/main/config.json") == R"({"version":"v2"})");
    // The content, not the LFS pointer file the repository holds.
    CHECK(testsupport::readFile(dir + "/main/weights.bin") == expectedWeights());
    CHECK_THAT(testsupport::readFile(servers.lfsLog()), Catch::Contains("batch download"));
  }
  SECTION("a tag, a branch, and a ref that does not exist") {
    Run tag = runInitializer({servers.http("/git/model.git@v1"), dir + "/v1"}, {}, kGitUnset);
    INFO(tag.output);
    REQUIRE(tag.status == 0);
    CHECK(testsupport::readFile(dir + "/v1/config.json") == R"({"version":"v1"})");
    CHECK(testsupport::readFile(dir + "/v1/weights.bin") == expectedWeights());
    Run branch = runInitializer({servers.http("/git/model.git@dev"), dir + "/dev"}, {}, kGitUnset);
    INFO(branch.output);
    REQUIRE(branch.status == 0);
    CHECK(testsupport::readFile(dir + "/dev/dev-only.txt") == "dev");
    Run missing =
        runInitializer({servers.http("/git/model.git@nope"), dir + "/nope"}, {}, kGitUnset);
    CHECK(missing.status == 1);
    CHECK_THAT(missing.output,
               Catch::Contains("failed to download " + servers.http("/git/model.git@nope")) &&
                   Catch::Contains("has no branch, tag or commit \"nope\""));
    CHECK(storagetest::listEntries(dir + "/nope").empty());
  }
  SECTION("a repository that does not exist is one clear line") {
    Run result = runInitializer({servers.http("/git/absent.git"), dir + "/absent"}, {}, kGitUnset);
    INFO(result.output);
    CHECK(result.status == 1);
    CHECK_THAT(result.output, Catch::Contains("git fetch failed"));
    CHECK(occurrences(result.output, "failed to download") == 1);
    CHECK(storagetest::listEntries(dir + "/absent").empty());
  }
}

TEST_CASE("storage-initializer sends git credentials from the environment, never shows them",
          "[storage][initializer][git]") {
  GitServers servers;
  std::string dir = testsupport::makeTempDir("gitout");
  std::string basic = "Basic " + storage::base64Encode(std::string(GitServers::kUser) + ":" +
                                                       GitServers::kPassword);

  Run denied = runInitializer({servers.http("/private/model.git"), dir + "/denied"}, {}, kGitUnset);
  CHECK(denied.status == 1);
  CHECK_THAT(denied.output, Catch::Contains("git fetch failed"));

  Run wrong =
      runInitializer({servers.http("/private/model.git"), dir + "/wrong"},
                     {{"GIT_USERNAME", GitServers::kUser}, {"GIT_PASSWORD", "wrong-Pa55word"}},
                     {"127.0.0.1-headers", "STORAGE_GIT_TIMEOUT"});
  INFO(wrong.output);
  CHECK(wrong.status == 1);
  CHECK_THAT(wrong.output, !Catch::Contains("wrong-Pa55word") && !Catch::Contains("Basic "));

  // GIT_USERNAME/GIT_PASSWORD, a user name in the URI, and the <host>-headers secret form; the
  // LFS endpoint sits behind the same Basic check, so the files prove the header reached it too.
  std::vector<std::pair<std::string, std::map<std::string, std::string>>> forms{
      {servers.http("/private/model.git"),
       {{"GIT_USERNAME", GitServers::kUser}, {"GIT_PASSWORD", GitServers::kPassword}}},
      {"http://" + std::string(GitServers::kUser) + "@" +
           servers.http("/private/model.git").substr(7),
       {{"GIT_PASSWORD", GitServers::kPassword}}},
      {servers.http("/private/model.git"),
       {{"127.0.0.1-headers", R"({"Authorization":")" + basic + R"("})"}}}};
  int n = 0;
  for (const auto& [uri, env] : forms) {
    std::string out = dir + "/ok" + std::to_string(n++);
    std::vector<std::string> unset;
    for (const auto& name : kGitUnset)
      if (!env.contains(name)) unset.push_back(name);
    Run result = runInitializer({uri, out}, env, unset);
    INFO(uri);
    INFO(result.output);
    REQUIRE(result.status == 0);
    CHECK(testsupport::readFile(out + "/weights.bin") == expectedWeights());
    CHECK_THAT(result.output, !Catch::Contains(GitServers::kPassword) &&
                                  !Catch::Contains(GitServers::kUser + std::string("@")));
  }
}

TEST_CASE("storage-initializer clones over git:// from git daemon, and gives up on a silent one",
          "[storage][initializer][git]") {
  GitServers servers;
  std::string dir = testsupport::makeTempDir("gitout");
  Run head = runInitializer({servers.daemon("/plain.git"), dir + "/head"}, {}, kGitUnset);
  INFO(head.output);
  REQUIRE(head.status == 0);
  CHECK(storagetest::listEntries(dir + "/head") == Files{"a.txt"});
  CHECK(testsupport::readFile(dir + "/head/a.txt") == "2");
  Run tag = runInitializer({servers.daemon("/plain.git@v1"), dir + "/v1"}, {}, kGitUnset);
  INFO(tag.output);
  REQUIRE(tag.status == 0);
  CHECK(testsupport::readFile(dir + "/v1/a.txt") == "1");
  // A commit (protocol v2 lets a client ask for any reachable one).
  std::string commit = servers.commitOf("plain.git", "v1");
  Run pinned =
      runInitializer({servers.daemon("/plain.git@" + commit), dir + "/pinned"}, {}, kGitUnset);
  INFO(pinned.output);
  REQUIRE(pinned.status == 0);
  CHECK(testsupport::readFile(dir + "/pinned/a.txt") == "1");

  // A server that accepts and never answers: git:// has no stall rule of its own.
  uint16_t port = 0;
  int listener = testsupport::listenOnLoopback(8, port);
  auto start = std::chrono::steady_clock::now();
  Run silent =
      runInitializer({"git://127.0.0.1:" + std::to_string(port) + "/plain.git", dir + "/silent"},
                     {{"STORAGE_GIT_TIMEOUT", "2"}}, {"GIT_USERNAME", "GIT_PASSWORD"});
  CHECK(std::chrono::steady_clock::now() - start < 30s);
  ::close(listener);
  CHECK(silent.status == 1);
  CHECK_THAT(silent.output, Catch::Contains("took longer than 2 s (STORAGE_GIT_TIMEOUT)"));
  CHECK(storagetest::listEntries(dir + "/silent").empty());
}

TEST_CASE("allow/ignore patterns: fnmatch as Python's, the variable forms upstream takes",
          "[storage][patterns]") {
  using storage::fnmatchPython;
  CHECK(fnmatchPython("*.json", "tok/config.json"));  // '*' crosses '/'
  CHECK(fnmatchPython("*", ".hidden"));               // and matches a leading dot
  CHECK_FALSE(fnmatchPython("*.JSON", "config.json"));
  CHECK(fnmatchPython("model-0000?.bin", "model-00001.bin"));
  CHECK(fnmatchPython("[!a]*", "b.txt"));
  CHECK_FALSE(fnmatchPython("[!a]*", "a.txt"));
  CHECK(fnmatchPython("a\\b", "a\\b"));  // backslash is a literal character
  CHECK_FALSE(fnmatchPython("a\\*", "a*x"));

  using storage::parsePatternList;
  CHECK(parsePatternList(R"(["*.json", " tokenizer.model ", "", 7])") ==
        std::vector<std::string>{"*.json", "tokenizer.model", "7"});
  CHECK(parsePatternList(R"("*.json")") == std::vector<std::string>{"*.json"});
  CHECK(parsePatternList("*.json, *.txt ,,") == std::vector<std::string>{"*.json", "*.txt"});
  CHECK(parsePatternList("").empty());

  storage::Patterns patterns{{"*.json", "tok/"}, {"*/secret*"}};
  CHECK(patterns.keeps("config.json"));
  CHECK(patterns.keeps("tok/vocab.txt"));  // "tok/" means everything below tok
  CHECK_FALSE(patterns.keeps("model.bin"));
  CHECK_FALSE(patterns.keeps("tok/secret.json"));  // ignore wins over allow
  CHECK(storage::Patterns{}.keeps("anything"));
}

TEST_CASE("storage-initializer fetches only what STORAGE_ALLOW/IGNORE_PATTERNS select",
          "[storage][initializer][patterns]") {
  storagetest::S3rver s3;
  for (const char* key : {"m/config.json", "m/tokenizer.json", "m/model-00001.safetensors",
                          "m/sub/generation.json", "m/sub/extra.bin"}) {
    s3.put(key, std::string("content of ") + key);
  }
  std::map<std::string, std::string> env;
  for (const auto& [name, value] : s3.env())
    if (value) env[name] = *value;
  std::vector<std::string> unset{"STORAGE_ALLOW_PATTERNS", "STORAGE_IGNORE_PATTERNS"};
  for (const auto& [name, value] : s3.env())
    if (!value) unset.push_back(name);
  std::string dir = testsupport::makeTempDir("patterns");
  auto runWith = [&](const std::vector<std::string>& args,
                     std::map<std::string, std::string> patterns) {
    std::map<std::string, std::string> all = env;
    std::vector<std::string> remove;
    for (const auto& name : unset)
      if (!patterns.contains(name)) remove.push_back(name);
    all.insert(patterns.begin(), patterns.end());
    return runInitializer(args, all, remove);
  };

  Run json =
      runWith({"s3://models/m", dir + "/json"}, {{"STORAGE_ALLOW_PATTERNS", R"(["*.json"])"}});
  INFO(json.output);
  REQUIRE(json.status == 0);
  CHECK(storagetest::listFiles(dir + "/json") ==
        Files{"config.json", "tokenizer.json", "sub/generation.json"});
  CHECK(testsupport::readFile(dir + "/json/config.json") == "content of m/config.json");

  Run both =
      runWith({"s3://models/m", dir + "/both"}, {{"STORAGE_ALLOW_PATTERNS", "*.json,*.safetensors"},
                                                 {"STORAGE_IGNORE_PATTERNS", R"("sub/")"}});
  INFO(both.output);
  REQUIRE(both.status == 0);
  CHECK(storagetest::listFiles(dir + "/both") ==
        Files{"config.json", "tokenizer.json", "model-00001.safetensors"});

  Run ignore = runWith({"s3://models/m", dir + "/ignore"},
                       {{"STORAGE_IGNORE_PATTERNS", R"(["*.safetensors", "*.bin"])"}});
  INFO(ignore.output);
  REQUIRE(ignore.status == 0);
  CHECK(storagetest::listFiles(dir + "/ignore") ==
        Files{"config.json", "tokenizer.json", "sub/generation.json"});

  // A URI that names one object is fetched whatever the patterns, as upstream's exact match.
  Run exact = runWith({"s3://models/m/sub/extra.bin", dir + "/exact"},
                      {{"STORAGE_ALLOW_PATTERNS", R"(["*.json"])"}});
  INFO(exact.output);
  REQUIRE(exact.status == 0);
  CHECK(storagetest::listFiles(dir + "/exact") == Files{"extra.bin"});

  // Local folders: the patterns select among the top-level names only.
  fs::create_directories(dir + "/local/sub");
  testsupport::writeFile(dir + "/local/config.json", "c");
  testsupport::writeFile(dir + "/local/w.bin", "w");
  testsupport::writeFile(dir + "/local/sub/x.bin", "x");
  Run local = runWith({dir + "/local", dir + "/localout"},
                      {{"STORAGE_ALLOW_PATTERNS", R"(["*.json", "sub"])"}});
  INFO(local.output);
  REQUIRE(local.status == 0);
  CHECK(storagetest::listFiles(dir + "/localout") == Files{"config.json", "sub/x.bin"});
  Run none = runWith({dir + "/local", dir + "/noneout"},
                     {{"STORAGE_ALLOW_PATTERNS", R"(["*.safetensors"])"}});
  CHECK(none.status == 1);
  CHECK_THAT(none.output, Catch::Contains("the allow/ignore patterns leave no file"));
}

TEST_CASE("Hugging Face downloads honour the allow/ignore patterns", "[storage][hf][patterns]") {
  storagetest::FakeHf hf;
  fs::create_directories(hf.root() + "/owner/model/tok");
  testsupport::writeFile(hf.root() + "/owner/model/config.json", "{}");
  testsupport::writeFile(hf.root() + "/owner/model/model.safetensors", "tensors");
  testsupport::writeFile(hf.root() + "/owner/model/tok/vocab.txt", "v");
  std::string dir = testsupport::makeTempDir("hfpat");
  std::map<std::string, std::string> env{{"HF_ENDPOINT", hf.endpoint()},
                                         {"STORAGE_ALLOW_PATTERNS", R"(["*.json", "tok/"])"}};
  Run result = runInitializer({"hf://owner/model", dir + "/out"}, env,
                              {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "STORAGE_IGNORE_PATTERNS"});
  INFO(result.output);
  REQUIRE(result.status == 0);
  CHECK(storagetest::listFiles(dir + "/out") == Files{"config.json", "tok/vocab.txt"});
}

TEST_CASE("storage-initializer reads HDFS through WebHDFS, namenode in the URI (seed form)",
          "[storage][initializer][hdfs]") {
  FakeWebHdfs hdfs({"--require-user", "modeler"});
  hdfs.write("/models/m/config.json", "{}");
  hdfs.write("/models/m/weights/w.bin", std::string(200000, 'w'));
  hdfs.write("/models/m/weights/deeper/x.bin", "x");
  std::string dir = testsupport::makeTempDir("hdfsout");
  fs::create_directories(dir + "/emptysecret");
  std::map<std::string, std::string> env{{"HDFS_SECRET_DIR", dir + "/emptysecret"},
                                         {"HADOOP_USER_NAME", "modeler"}};
  std::vector<std::string> unset{"STORAGE_ALLOW_PATTERNS", "STORAGE_IGNORE_PATTERNS"};

  Run folder =
      runInitializer({"hdfs://" + hdfs.authority() + "/models/m", dir + "/folder"}, env, unset);
  INFO(folder.output);
  REQUIRE(folder.status == 0);
  CHECK(storagetest::listFiles(dir + "/folder") ==
        Files{"config.json", "weights/w.bin", "weights/deeper/x.bin"});
  CHECK(testsupport::readFile(dir + "/folder/weights/w.bin") == std::string(200000, 'w'));
  // Each file went through the namenode's 307 to the datanode, as user.name.
  size_t datanodeReads = 0;
  for (const auto& line : hdfs.requests()) {
    CHECK_THAT(line, Catch::Contains(R"("user.name": "modeler")"));
    if (line.find(R"("role": "datanode")") != std::string::npos) ++datanodeReads;
  }
  CHECK(datanodeReads == 3);

  Run file = runInitializer(
      {"webhdfs://" + hdfs.authority() + "/models/m/config.json", dir + "/file"}, env, unset);
  INFO(file.output);
  REQUIRE(file.status == 0);
  CHECK(storagetest::listFiles(dir + "/file") == Files{"config.json"});

  Run missing = runInitializer({"hdfs://" + hdfs.authority() + "/models/absent", dir + "/missing"},
                               env, unset);
  CHECK(missing.status == 1);
  CHECK_THAT(missing.output, Catch::Contains("FileNotFoundException: File does not exist: "
                                             "/models/absent"));
  Run anonymous =
      runInitializer({"hdfs://" + hdfs.authority() + "/models/m", dir + "/anonymous"},
                     {{"HDFS_SECRET_DIR", dir + "/emptysecret"}},
                     {"HADOOP_USER_NAME", "STORAGE_ALLOW_PATTERNS", "STORAGE_IGNORE_PATTERNS"});
  CHECK(anonymous.status == 1);
  CHECK_THAT(anonymous.output, Catch::Contains("401") && Catch::Contains("access denied"));
}

TEST_CASE("storage-initializer reads HDFS with upstream's secret: HDFS_NAMENODE, doas, headers",
          "[storage][initializer][hdfs]") {
  FakeWebHdfs hdfs({"--home", "/user/alice"});
  hdfs.write("/models/m/config.json", "{}");
  hdfs.write("/models/m/model.bin", "weights");
  hdfs.write("/models/m/tok/vocab.txt", "v");
  hdfs.write("/user/alice/projects/m/config.json", "home");
  std::string dir = testsupport::makeTempDir("hdfsout");
  std::string secret = dir + "/secret";
  fs::create_directories(secret);
  testsupport::writeFile(secret + "/HDFS_NAMENODE", "http://" + hdfs.authority() + "\n");
  testsupport::writeFile(secret + "/USER_PROXY", "alice");
  testsupport::writeFile(secret + "/HEADERS", R"({"X-Extra": "from-secret"})");
  testsupport::writeFile(secret + "/N_THREADS", "3");
  std::map<std::string, std::string> env{{"HDFS_SECRET_DIR", secret}};
  std::vector<std::string> unset{"HADOOP_USER_NAME", "STORAGE_ALLOW_PATTERNS",
                                 "STORAGE_IGNORE_PATTERNS"};

  // Everything after hdfs:// is the path when the secret names the namenode.
  Run result = runInitializer({"hdfs://models/m", dir + "/out"}, env, unset);
  INFO(result.output);
  REQUIRE(result.status == 0);
  CHECK(storagetest::listFiles(dir + "/out") == Files{"config.json", "model.bin", "tok/vocab.txt"});
  for (const auto& line : hdfs.requests()) {
    CHECK_THAT(line, Catch::Contains(R"("doas": "alice")"));
    if (line.find(R"("role": "namenode")") != std::string::npos) {
      CHECK_THAT(line, Catch::Contains(R"("x-extra": "from-secret")"));
    }
  }
  // Patterns select among the folder's top-level names, as upstream's.
  std::map<std::string, std::string> withPatterns = env;
  withPatterns["STORAGE_ALLOW_PATTERNS"] = R"(["*.json", "tok"])";
  Run filtered = runInitializer({"hdfs://models/m", dir + "/filtered"}, withPatterns,
                                {"HADOOP_USER_NAME", "STORAGE_IGNORE_PATTERNS"});
  INFO(filtered.output);
  REQUIRE(filtered.status == 0);
  CHECK(storagetest::listFiles(dir + "/filtered") == Files{"config.json", "tok/vocab.txt"});

  // A relative HDFS_ROOTPATH is below the home folder; the URI's path is below the root.
  testsupport::writeFile(secret + "/HDFS_ROOTPATH", "projects");
  Run rooted = runInitializer({"hdfs://m", dir + "/rooted"}, env, unset);
  INFO(rooted.output);
  REQUIRE(rooted.status == 0);
  CHECK(testsupport::readFile(dir + "/rooted/config.json") == "home");
}

// The WebHDFS fake on https asking for a client certificate, a model of two files below
// /models/m, and the certificates that let a client in.
struct TlsHdfs {
  std::string pkiDir = testsupport::makeTempDir("hdfspki");
  testsupport::TestPki pki = testsupport::makeTestPki(pkiDir);
  std::pair<std::string, std::string> client = makeClientCertificate(pkiDir);
  FakeWebHdfs hdfs{
      {"--tls-cert", pki.serverCert, "--tls-key", pki.serverKey, "--client-ca", pki.caCert}};

  TlsHdfs() {
    hdfs.write("/models/m/config.json", "{}");
    hdfs.write("/models/m/model.bin", "weights");
  }
};

TEST_CASE("storage-initializer reads HDFS over TLS with the secret's client certificate",
          "[storage][initializer][hdfs]") {
  TlsHdfs tls;
  FakeWebHdfs& hdfs = tls.hdfs;
  const auto& [clientCert, clientKey] = tls.client;
  std::string dir = testsupport::makeTempDir("hdfsout");
  std::string secret = dir + "/secret";
  fs::create_directories(secret);
  testsupport::writeFile(secret + "/HDFS_NAMENODE", "https://" + hdfs.authority());
  testsupport::writeFile(secret + "/TLS_CA", testsupport::readFile(tls.pki.caCert));
  std::map<std::string, std::string> env{{"HDFS_SECRET_DIR", secret}};
  std::vector<std::string> unset{"HADOOP_USER_NAME", "STORAGE_ALLOW_PATTERNS",
                                 "STORAGE_IGNORE_PATTERNS"};

  Run noCert = runInitializer({"hdfs://models/m", dir + "/nocert"}, env, unset);
  CHECK(noCert.status == 1);
  CHECK_THAT(noCert.output, Catch::Contains("failed to download hdfs://models/m"));

  testsupport::writeFile(secret + "/TLS_CERT", testsupport::readFile(clientCert));
  testsupport::writeFile(secret + "/TLS_KEY", testsupport::readFile(clientKey));
  Run result = runInitializer({"hdfs://models/m", dir + "/out"}, env, unset);
  INFO(result.output);
  REQUIRE(result.status == 0);
  CHECK(storagetest::listFiles(dir + "/out") == Files{"config.json", "model.bin"});

  // Half a Kerberos configuration is refused clearly rather than ignored.
  testsupport::writeFile(secret + "/KERBEROS_PRINCIPAL", "me@EXAMPLE");
  Run kerberos = runInitializer({"hdfs://models/m", dir + "/krb"}, env, unset);
  CHECK(kerberos.status == 1);
  CHECK_THAT(kerberos.output,
             Catch::Contains("Kerberos needs both KERBEROS_PRINCIPAL and KERBEROS_KEYTAB"));
}

TEST_CASE("storage-initializer reads HDFS with the keys of a STORAGE_CONFIG of type hdfs",
          "[storage][initializer][hdfs][storage-config]") {
  TlsHdfs tls;
  FakeWebHdfs& hdfs = tls.hdfs;
  const auto& [clientCert, clientKey] = tls.client;
  std::string dir = testsupport::makeTempDir("hdfsspec");
  fs::create_directories(dir + "/tmp");
  // Base64 as the `base64` tool writes it: lines of 76 characters.
  auto wrapped = [](const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size(); i += 76)
      out += text.substr(i, 76) + "\n";
    return out;
  };
  // What a data connection's storage-config secret holds: the files of the HDFS secret as keys,
  // the TLS ones base64-encoded.
  nlohmann::json spec{
      {"type", "hdfs"},
      {"HDFS_NAMENODE", "https://" + hdfs.authority()},
      {"USER_PROXY", "alice"},
      {"TLS_CA", storage::base64Encode(testsupport::readFile(tls.pki.caCert))},
      {"TLS_CERT", wrapped(storage::base64Encode(testsupport::readFile(clientCert)))},
      {"TLS_KEY", storage::base64Encode(testsupport::readFile(clientKey))}};
  std::map<std::string, std::string> env{{"STORAGE_CONFIG", spec.dump()}, {"TMPDIR", dir + "/tmp"}};
  std::vector<std::string> unset{"HDFS_SECRET_DIR", "HADOOP_USER_NAME", "STORAGE_OVERRIDE_CONFIG",
                                 "STORAGE_ALLOW_PATTERNS", "STORAGE_IGNORE_PATTERNS"};
  Run result = runInitializer({"<scheme-placeholder>://models/m", dir + "/out"}, env, unset);
  INFO(result.output);
  REQUIRE(result.status == 0);
  CHECK(storagetest::listFiles(dir + "/out") == Files{"config.json", "model.bin"});
  for (const auto& line : hdfs.requests())
    CHECK_THAT(line, Catch::Contains(R"("doas": "alice")"));
  // The keys were files for the download only.
  CHECK(fs::is_empty(dir + "/tmp"));

  // A key that must be base64 and is not: one line naming the key, nothing of its value.
  spec["TLS_KEY"] = "-----BEGIN PRIVATE KEY----- secret-bits";
  env["STORAGE_CONFIG"] = spec.dump();
  Run bad = runInitializer({"<scheme-placeholder>://models/m", dir + "/bad"}, env, unset);
  CHECK(bad.status == 1);
  CHECK_THAT(bad.output, Catch::Contains("STORAGE_CONFIG key TLS_KEY is not base64"));
  CHECK(bad.output.find("secret-bits") == std::string::npos);
  CHECK(fs::is_empty(dir + "/tmp"));
}

TEST_CASE("storage-initializer reads HDFS on a Kerberos cluster: keytab, kinit, SPNEGO",
          "[storage][initializer][hdfs][kerberos]") {
  // A real MIT KDC on loopback; the namenode fake accepts SPNEGO with python3-gssapi.
  std::string kdcDir = testsupport::makeTempDir("kdc");
  uint16_t kdcPort = testsupport::freePort();
  testsupport::Process kdc({"/usr/bin/python3",
                            testsupport::sourcePath("tests/support/storage_kdc.py"), kdcDir,
                            std::to_string(kdcPort)});
  REQUIRE(testsupport::waitForPort(kdcPort, 30s));
  std::string krb5Conf = kdcDir + "/krb5.conf";
  storagetest::ScopedEnv krb({{"KRB5_CONFIG", krb5Conf}});
  FakeWebHdfs hdfs({"--spnego-keytab", kdcDir + "/http.keytab"}, "/usr/bin/python3");
  hdfs.write("/models/m/config.json", "{}");
  hdfs.write("/models/m/w.bin", "weights");
  std::string dir = testsupport::makeTempDir("hdfsout");
  std::string secret = dir + "/secret";
  fs::create_directories(secret);
  testsupport::writeFile(secret + "/HDFS_NAMENODE", "http://" + hdfs.authority());
  std::map<std::string, std::string> env{{"HDFS_SECRET_DIR", secret},
                                         {"KRB5_CONFIG", krb5Conf},
                                         {"KRB5CCNAME", "FILE:" + dir + "/ccache"},
                                         {"HADOOP_USER_NAME", "ignored-with-kerberos"}};
  std::vector<std::string> unset{"STORAGE_ALLOW_PATTERNS", "STORAGE_IGNORE_PATTERNS",
                                 "KRB5_CLIENT_KTNAME"};

  Run anonymous = runInitializer({"hdfs://models/m", dir + "/anonymous"}, env, unset);
  CHECK(anonymous.status == 1);
  CHECK_THAT(anonymous.output, Catch::Contains("401") && Catch::Contains("access denied"));

  fs::copy_file(kdcDir + "/client.keytab", secret + "/KERBEROS_KEYTAB");
  testsupport::writeFile(secret + "/KERBEROS_PRINCIPAL", "modeler@KSA.TEST");
  Run result = runInitializer({"hdfs://models/m", dir + "/out"}, env, unset);
  INFO(result.output);
  REQUIRE(result.status == 0);
  CHECK(storagetest::listFiles(dir + "/out") == Files{"config.json", "w.bin"});
  size_t authenticated = 0;
  for (const auto& line : hdfs.requests()) {
    if (line.find(R"("principal": "modeler@KSA.TEST")") != std::string::npos) {
      ++authenticated;
      CHECK_THAT(line, Catch::Contains(R"("user.name": null)"));
    }
  }
  CHECK(authenticated >= 4);  // GETFILESTATUS, LISTSTATUS and two OPENs

  testsupport::writeFile(secret + "/KERBEROS_PRINCIPAL", "nobody@KSA.TEST");
  Run wrong = runInitializer({"hdfs://models/m", dir + "/wrong"}, env, unset);
  CHECK(wrong.status == 1);
  CHECK_THAT(wrong.output, Catch::Contains("kinit for nobody@KSA.TEST failed"));
}

TEST_CASE("The puller downloads git and HDFS models and loads them", "[puller][git][hdfs]") {
  GitServers git;
  FakeWebHdfs hdfs;
  hdfs.write("/models/h/config.json", "hdfs");
  std::string root = testsupport::makeTempDir("pullerbackends");
  fs::create_directories(root + "/configs");
  fs::create_directories(root + "/emptysecret");
  nlohmann::json models = nlohmann::json::array();
  for (const auto& [name, uri] : std::vector<std::pair<std::string, std::string>>{
           {"g", git.http("/git/model.git@v1")},
           {"h", "hdfs://" + hdfs.authority() + "/models/h"}}) {
    models.push_back(
        {{"modelName", name},
         {"modelSpec", {{"storageUri", uri}, {"framework", "sklearn"}, {"memory", "1Mi"}}}});
  }
  testsupport::writeFile(root + "/configs/models.json", models.dump());
  storagetest::ScopedEnv env({{"HDFS_SECRET_DIR", root + "/emptysecret"},
                              {"HADOOP_USER_NAME", std::nullopt},
                              {"GIT_USERNAME", std::nullopt},
                              {"GIT_PASSWORD", std::nullopt},
                              {"127.0.0.1-headers", std::nullopt}});
  testsupport::ModelServer server;
  REQUIRE(storagetest::pullInitialModels(root, server.port()));
  std::string g = root + "/models/g";
  CHECK(testsupport::readFile(g + "/config.json") == R"({"version":"v1"})");
  CHECK(testsupport::readFile(g + "/weights.bin") == expectedWeights());
  for (const auto& entry : storagetest::listEntries(g)) {
    CHECK_FALSE(entry.starts_with(".git-tmp"));
  }
  CHECK(testsupport::readFile(root + "/models/h/config.json") == "hdfs");
  size_t loads = 0;
  for (const auto& line : server.recordedLines()) {
    std::string path = nlohmann::json::parse(line)["path"];
    if (path == "/v2/repository/models/g/load" || path == "/v2/repository/models/h/load") ++loads;
  }
  CHECK(loads == 2);
}
