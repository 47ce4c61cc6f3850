// Confidential serving (puller/storage/confidential.h): JWE files made by jwcrypto (the library
// KServe's own decryptor uses; tests/support/storage_confidential.py) for every alg and enc
// pair, decrypted by ours; then the storage-initializer end to end with the key from a fake of
// the Confidential Data Hub (which only runs inside an attested confidential guest).
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "puller/storage/confidential.h"
#include "tests/puller/storage_peers.h"
#include "tests/support/net.h"
#include "tests/support/process.h"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using storagetest::runInitializer;

namespace {

constexpr const char* kResource = "default/kbsres1/model-key";

// Bytes no text-aware step would keep as they are.
std::string pattern(size_t size) {
  std::string out(size, '\0');
  uint32_t state = 2463534242u;
  for (char& c : out) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    c = static_cast<char>(state & 0xff);
  }
  return out;
}

void python(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/usr/bin/python3",
                                testsupport::sourcePath("tests/support/storage_confidential.py")};
  argv.insert(argv.end(), args.begin(), args.end());
  testsupport::Process process(argv);
  if (process.wait(120s) != 0) throw std::runtime_error("jwcrypto: " + process.output());
}

storage::Status decryptText(const std::string& text, const std::string& key, std::string& plain) {
  plain.clear();
  return storage::decryptJwe(text, key, [&](std::string_view piece) {
    plain.append(piece);
    return true;
  });
}

// Encrypts `plain` with jwcrypto into `out`.
void encrypt(const std::string& dir, const std::string& key, const std::string& alg,
             const std::string& enc, const std::string& plain, const std::string& out,
             std::vector<std::string> extra = {}) {
  testsupport::writeFile(dir + "/key.bin", key);
  testsupport::writeFile(dir + "/plain.bin", plain);
  std::vector<std::string> args{"encrypt", "--key-file", dir + "/key.bin", "--alg", alg,
                                "--enc",   enc};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(dir + "/plain.bin");
  args.push_back(out);
  python(args);
}

class FakeCdh {
 public:
  explicit FakeCdh(const std::string& keyFile)
      : dir_(testsupport::makeTempDir("cdh")), port_(testsupport::freePort()) {
    process_ = std::make_unique<testsupport::Process>(std::vector<std::string>{
        "/usr/bin/python3", testsupport::sourcePath("tests/support/storage_confidential.py"), "cdh",
        "--port", std::to_string(port_), "--resource", kResource, "--key-file", keyFile, "--log",
        log()});
    if (!testsupport::waitForPort(port_, 15s)) {
      throw std::runtime_error("CDH fake did not start: " + process_->output());
    }
  }
  std::string address() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return dir_ + "/requests.log"; }

 private:
  std::string dir_;
  uint16_t port_;
  std::unique_ptr<testsupport::Process> process_;
};

}  // namespace

TEST_CASE("JWE from jwcrypto: every alg and enc, compact and JSON, decrypt to the plaintext",
          "[storage][confidential]") {
  std::string dir = testsupport::makeTempDir("jwe-matrix");
  // Over one decoding piece (256 Ki characters), so the ciphertext is read in several.
  const std::string plain = pattern(300 * 1024 + 7);
  testsupport::writeFile(dir + "/plain.bin", plain);
  python({"matrix", "--out", dir, "--plain", dir + "/plain.bin"});
  int cases = 0;
  for (const char* alg : {"dir", "A128KW", "A192KW", "A256KW"}) {
    for (const char* enc :
         {"A128GCM", "A192GCM", "A256GCM", "A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512"}) {
      for (const char* form : {".compact", ".json"}) {
        std::string stem = dir + "/" + alg + "_" + enc;
        INFO(stem << form);
        std::string key = testsupport::readFile(stem + ".key");
        std::string text = testsupport::readFile(stem + form);
        std::string out;
        storage::Status status = decryptText(text, key, out);
        INFO(status.message);
        REQUIRE(status.ok);
        CHECK(out == plain);
        ++cases;
        // One bit of the ciphertext flipped: the tag refuses it.
        size_t at = std::string(form) == ".json"
                        ? text.find("\"ciphertext\":\"") + 20
                        : text.find('.', text.find('.', text.find('.') + 1) + 1) + 9;
        std::string altered = text;
        altered[at] = altered[at] == 'A' ? 'B' : 'A';
        status = decryptText(altered, key, out);
        CHECK_FALSE(status.ok);
        CHECK_THAT(status.message,
                   Catch::Contains("does not authenticate") || Catch::Contains("bad padding"));
        // Another key of the right size: refused by the unwrap or the tag.
        std::string other = key;
        other[0] = static_cast<char>(other[0] ^ 0x5a);
        status = decryptText(text, other, out);
        CHECK_FALSE(status.ok);
        CHECK_THAT(status.message, Catch::Contains("wrong key"));
      }
    }
  }
  CHECK(cases == 48);
}

TEST_CASE("JWE: what is not supported or not a JWE fails with a reason",
          "[storage][confidential]") {
  std::string dir = testsupport::makeTempDir("jwe-bad");
  const std::string key(32, 'k');
  std::string out;
  auto error = [&](const std::string& text, const std::string& withKey) {
    storage::Status status = decryptText(text, withKey, out);
    CHECK_FALSE(status.ok);
    CHECK(status.message.find('\n') == std::string::npos);
    return status.message;
  };
  CHECK(error("eyJhbGciOiJkaXIifQ.a.b.c", key) == "a compact JWE has five parts; this one has 4");
  CHECK(error("a.b.c.d.e.f", key) == "a compact JWE has five parts; this one has more");
  CHECK(error("eyJ!.a.b.c.d", key) == "the JWE protected header is not base64url");
  CHECK(error("[1]", key) == "the JWE is neither compact nor a JSON object");
  CHECK(error(R"({"recipients":[{},{}]})", key) ==
        "the JWE must have exactly one recipient (the key is one symmetric key)");
  CHECK(error(R"({"protected":"eyJhbGciOiJkaXIifQ","unprotected":{"alg":"dir"}})", key) ==
        "the JWE header member \"alg\" is repeated");

  const std::string plain = "weights";
  encrypt(dir, key, "dir", "A256GCM", plain, dir + "/zip.jwe", {"--zip"});
  CHECK(error(testsupport::readFile(dir + "/zip.jwe"), key) ==
        "compressed JWE (zip) is not supported");
  encrypt(dir, key, "dir", "A256GCM", plain, dir + "/dir.jwe");
  CHECK(error(testsupport::readFile(dir + "/dir.jwe"), std::string(16, 'k')) ==
        "the key is 16 bytes; A256GCM with alg dir needs 32");
  encrypt(dir, key, "A256KW", "A128GCM", plain, dir + "/kw.jwe");
  CHECK(error(testsupport::readFile(dir + "/kw.jwe"), std::string(24, 'k')) ==
        "the key is 24 bytes; alg A256KW needs 32");
  // A trailing line break (an editor, or `echo`) is not part of the JWE.
  CHECK(decryptText(testsupport::readFile(dir + "/kw.jwe") + "\n", key, out).ok);
  CHECK(out == plain);
}

TEST_CASE("storage-initializer decrypts the JWE files it downloaded with the key from CDH",
          "[storage][confidential][initializer]") {
  std::string dir = testsupport::makeTempDir("confidential");
  const std::string key = pattern(32);
  testsupport::writeFile(dir + "/cdh.key", key);
  FakeCdh cdh(dir + "/cdh.key");
  const std::string model = pattern(3 * 1024 * 1024 + 1);
  std::string source = dir + "/source";
  fs::create_directories(source + "/sub");
  encrypt(dir, key, "A256KW", "A256GCM", model, source + "/model.bin.jwe");
  encrypt(dir, key, "dir", "A256GCM", "tokenizer", source + "/tokenizer.json");
  encrypt(dir, key, "A256KW", "A128CBC-HS256", "nested", source + "/sub/extra.JWE", {"--json"});
  testsupport::writeFile(source + "/config.json", R"({"plain": true})");
  std::map<std::string, std::string> env{
      {"CONFIDENTIAL_ENABLED", "True"},
      {"CONFIDENTIAL_RESOURCE_ID", std::string("kbs:///") + kResource},
      {"CDH_ADDR", cdh.address() + "/"}};

  auto run = runInitializer({source, dir + "/out"}, env);
  INFO(run.output);
  REQUIRE(run.status == 0);
  CHECK(testsupport::readFile(dir + "/out/model.bin") == model);
  CHECK_FALSE(fs::exists(dir + "/out/model.bin.jwe"));
  CHECK(testsupport::readFile(dir + "/out/tokenizer.json") == "tokenizer");
  CHECK(testsupport::readFile(dir + "/out/sub/extra") == "nested");
  CHECK(testsupport::readFile(dir + "/out/config.json") == R"({"plain": true})");
  CHECK_THAT(run.output, Catch::Contains("decrypted 3 JWE files below " + dir + "/out"));
  CHECK(testsupport::readFile(cdh.log()) == std::string("/cdh/resource/") + kResource + "\n");
  storagetest::checkNoSecret(run.output, {key});

  SECTION("a key that does not fit leaves the JWE and no partial plaintext") {
    testsupport::writeFile(dir + "/cdh.key", pattern(31) + "x");
    auto wrong = runInitializer({source, dir + "/wrong"}, env);
    CHECK(wrong.status == 1);
    CHECK_THAT(wrong.output, Catch::Contains("storage-initializer: failed to decrypt: cannot "
                                             "decrypt " +
                                             dir + "/wrong/") &&
                                 Catch::Contains("wrong key"));
    for (const auto& entry : fs::recursive_directory_iterator(dir + "/wrong")) {
      CHECK(entry.path().extension() != ".decrypting");
    }
  }
  SECTION("a resource CDH does not hold, or no CDH at all, is named") {
    env["CONFIDENTIAL_RESOURCE_ID"] = "kbs:///default/kbsres1/other";
    auto missing = runInitializer({source, dir + "/missing"}, env);
    CHECK(missing.status == 1);
    CHECK_THAT(missing.output, Catch::Contains("the Confidential Data Hub at " + cdh.address() +
                                               " did not release kbs:///default/kbsres1/other") &&
                                   Catch::Contains("404"));
    env["CDH_ADDR"] = "http://127.0.0.1:" + std::to_string(testsupport::freePort());
    auto down = runInitializer({source, dir + "/down"}, env);
    CHECK(down.status == 1);
    CHECK_THAT(down.output, Catch::Contains("did not release"));
  }
  SECTION("a malformed or missing resource id fails before anything is downloaded") {
    for (const char* id : {"", "kbs:///only/two", "kbs://host/a/b/c", "default/kbsres1/key"}) {
      INFO(id);
      env["CONFIDENTIAL_RESOURCE_ID"] = id;
      auto bad = runInitializer({source, dir + "/bad"}, env);
      CHECK(bad.status == 1);
      CHECK_THAT(bad.output, Catch::Contains("CONFIDENTIAL_RESOURCE_ID"));
      CHECK_FALSE(fs::exists(dir + "/bad"));
    }
  }
  SECTION("without CONFIDENTIAL_ENABLED the files stay as downloaded") {
    auto plain = runInitializer({source, dir + "/plain"}, {}, {"CONFIDENTIAL_ENABLED"});
    CHECK(plain.status == 0);
    CHECK(fs::exists(dir + "/plain/model.bin.jwe"));
  }
}
