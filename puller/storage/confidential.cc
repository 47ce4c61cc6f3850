#include "puller/storage/confidential.h"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "puller/storage/http_client.h"
#include "puller/storage/util.h"

namespace storage {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kDefaultCdh = "http://127.0.0.1:8006";
// Ciphertext is decoded and decrypted this many base64url characters at a time (a multiple of
// 4, so every piece decodes on its own), which bounds memory whatever the model's size.
constexpr size_t kPieceChars = 1 << 18;

// base64url (RFC 4648 §5) without padding, as JWE writes it; appends the bytes to `out`.
bool decodeBase64Url(std::string_view text, std::string& out) {
  static const std::array<int8_t, 256> kTable = [] {
    std::array<int8_t, 256> table{};
    table.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (int i = 0; i < 64; ++i)
      table[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
    return table;
  }();
  uint32_t buffer = 0;
  int bits = 0;
  out.reserve(out.size() + text.size() / 4 * 3 + 2);
  for (unsigned char c : text) {
    int value = kTable[c];
    if (value < 0) return false;
    buffer = (buffer << 6) | static_cast<uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  // One character alone cannot end a quantum (6 bits make no byte).
  return bits < 6;
}

std::optional<std::string> base64Url(std::string_view text) {
  std::string out;
  if (!decodeBase64Url(text, out)) return std::nullopt;
  return out;
}

// The parts of a JWE that decryption needs.
struct Jwe {
  std::string protectedB64;  // as written: with `aadB64` it is the additional authenticated data
  std::string aadB64;        // the JSON serialization's "aad", "" when none
  json header;  // the protected header with the shared and the recipient's unprotected ones
  std::string encryptedKey;
  std::string iv;
  std::string tag;
  std::string ownedCiphertext;  // the JSON serialization's ciphertext, which the view holds
  std::string_view ciphertextB64;
};

Status fail(const std::string& why) {
  return Status::failure(why, true);
}

// Adds the members of an unprotected header; a name in two headers is an error (RFC 7516 §7.2).
Status mergeHeader(json& header, const json& more) {
  if (more.is_null()) return Status::success();
  if (!more.is_object()) return fail("a JWE header is not a JSON object");
  for (const auto& [name, value] : more.items()) {
    if (header.contains(name)) return fail("the JWE header member \"" + name + "\" is repeated");
    header[name] = value;
  }
  return Status::success();
}

Status decodeField(std::string_view b64, const char* what, std::string& out) {
  std::optional<std::string> bytes = base64Url(b64);
  if (!bytes) return fail(std::string("the JWE ") + what + " is not base64url");
  out = std::move(*bytes);
  return Status::success();
}

Status parseProtected(Jwe& jwe) {
  if (jwe.protectedB64.empty()) {
    jwe.header = json::object();
    return Status::success();
  }
  std::optional<std::string> text = base64Url(jwe.protectedB64);
  if (!text) return fail("the JWE protected header is not base64url");
  jwe.header = json::parse(*text, nullptr, false);
  if (!jwe.header.is_object()) return fail("the JWE protected header is not a JSON object");
  return Status::success();
}

Status parseCompact(std::string_view text, Jwe& jwe) {
  std::array<std::string_view, 5> parts;
  size_t count = 0;
  while (count < 5) {
    size_t dot = text.find('.');
    parts[count++] = text.substr(0, dot);
    if (dot == std::string_view::npos) break;
    text.remove_prefix(dot + 1);
    if (count == 5) return fail("a compact JWE has five parts; this one has more");
  }
  if (count != 5) {
    return fail("a compact JWE has five parts; this one has " + std::to_string(count));
  }
  jwe.protectedB64 = std::string(parts[0]);
  if (jwe.protectedB64.empty()) return fail("the compact JWE has no protected header");
  if (Status status = parseProtected(jwe); !status.ok) return status;
  if (Status status = decodeField(parts[1], "encrypted key", jwe.encryptedKey); !status.ok) {
    return status;
  }
  if (Status status = decodeField(parts[2], "iv", jwe.iv); !status.ok) return status;
  if (Status status = decodeField(parts[4], "tag", jwe.tag); !status.ok) return status;
  jwe.ciphertextB64 = parts[3];
  return Status::success();
}

std::string stringMember(const json& object, const char* name) {
  auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Status parseJson(std::string_view text, Jwe& jwe) {
  json document = json::parse(text, nullptr, false);
  if (!document.is_object()) return fail("the JWE is neither compact nor a JSON object");
  jwe.protectedB64 = stringMember(document, "protected");
  jwe.aadB64 = stringMember(document, "aad");
  if (Status status = parseProtected(jwe); !status.ok) return status;
  if (Status status = mergeHeader(jwe.header, document.value("unprotected", json())); !status.ok) {
    return status;
  }
  json recipient = document;
  if (document.contains("recipients")) {
    const json& recipients = document["recipients"];
    if (!recipients.is_array() || recipients.size() != 1) {
      return fail("the JWE must have exactly one recipient (the key is one symmetric key)");
    }
    recipient = recipients[0];
    if (!recipient.is_object()) return fail("the JWE recipient is not a JSON object");
  }
  if (Status status = mergeHeader(jwe.header, recipient.value("header", json())); !status.ok) {
    return status;
  }
  std::string key = stringMember(recipient, "encrypted_key");
  if (Status status = decodeField(key, "encrypted key", jwe.encryptedKey); !status.ok) {
    return status;
  }
  if (Status status = decodeField(stringMember(document, "iv"), "iv", jwe.iv); !status.ok) {
    return status;
  }
  if (Status status = decodeField(stringMember(document, "tag"), "tag", jwe.tag); !status.ok) {
    return status;
  }
  jwe.ownedCiphertext = stringMember(document, "ciphertext");
  jwe.ciphertextB64 = jwe.ownedCiphertext;
  return Status::success();
}

struct Encryption {
  const char* name;
  const EVP_CIPHER* (*cipher)();
  size_t keyBytes;     // the content key: the AES key, or for CBC the MAC key then the AES key
  const char* digest;  // CBC's HMAC digest; nullptr for GCM
};

constexpr Encryption kEncryptions[] = {
    {"A128GCM", EVP_aes_128_gcm, 16, nullptr},
    {"A192GCM", EVP_aes_192_gcm, 24, nullptr},
    {"A256GCM", EVP_aes_256_gcm, 32, nullptr},
    {"A128CBC-HS256", EVP_aes_128_cbc, 32, "SHA256"},
    {"A192CBC-HS384", EVP_aes_192_cbc, 48, "SHA384"},
    {"A256CBC-HS512", EVP_aes_256_cbc, 64, "SHA512"},
};

using CipherContext = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

Status contentKey(const Jwe& jwe, std::string_view key, const Encryption& enc, std::string& cek) {
  const std::string alg = stringMember(jwe.header, "alg");
  if (alg == "dir") {
    if (!jwe.encryptedKey.empty()) return fail("a JWE with alg dir carries no encrypted key");
    if (key.size() != enc.keyBytes) {
      return fail("the key is " + std::to_string(key.size()) + " bytes; " + enc.name +
                  " with alg dir needs " + std::to_string(enc.keyBytes));
    }
    cek = std::string(key);
    return Status::success();
  }
  const EVP_CIPHER* wrap = alg == "A128KW"   ? EVP_aes_128_wrap()
                           : alg == "A192KW" ? EVP_aes_192_wrap()
                           : alg == "A256KW" ? EVP_aes_256_wrap()
                                             : nullptr;
  if (wrap == nullptr) {
    return fail("JWE alg \"" + alg + "\" is not supported (dir, A128KW, A192KW, A256KW)");
  }
  if (key.size() != static_cast<size_t>(EVP_CIPHER_get_key_length(wrap))) {
    return fail("the key is " + std::to_string(key.size()) + " bytes; alg " + alg + " needs " +
                std::to_string(EVP_CIPHER_get_key_length(wrap)));
  }
  if (jwe.encryptedKey.size() != enc.keyBytes + 8) {
    return fail("the JWE encrypted key does not hold a " + std::to_string(enc.keyBytes) +
                "-byte content key");
  }
  CipherContext context(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  EVP_CIPHER_CTX_set_flags(context.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  cek.assign(jwe.encryptedKey.size() + 16, '\0');
  int length = 0;
  int tail = 0;
  if (!context ||
      EVP_DecryptInit_ex(context.get(), wrap, nullptr,
                         reinterpret_cast<const unsigned char*>(key.data()), nullptr) != 1 ||
      EVP_DecryptUpdate(context.get(), reinterpret_cast<unsigned char*>(cek.data()), &length,
                        reinterpret_cast<const unsigned char*>(jwe.encryptedKey.data()),
                        static_cast<int>(jwe.encryptedKey.size())) != 1 ||
      EVP_DecryptFinal_ex(context.get(), reinterpret_cast<unsigned char*>(cek.data()) + length,
                          &tail) != 1) {
    return fail("the content key does not unwrap with this key (wrong key, or altered file)");
  }
  cek.resize(static_cast<size_t>(length + tail));
  return Status::success();
}

// HMAC over the pieces CBC-HS authenticates, through OpenSSL 3's EVP_MAC.
class Hmac {
 public:
  Hmac(const char* digest, std::string_view key)
      : mac_(EVP_MAC_fetch(nullptr, "HMAC", nullptr), EVP_MAC_free),
        context_(mac_ ? EVP_MAC_CTX_new(mac_.get()) : nullptr, EVP_MAC_CTX_free) {
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(digest), 0),
        OSSL_PARAM_construct_end()};
    ok_ =
        context_ && EVP_MAC_init(context_.get(), reinterpret_cast<const unsigned char*>(key.data()),
                                 key.size(), params) == 1;
  }
  void update(std::string_view data) {
    ok_ = ok_ && EVP_MAC_update(context_.get(), reinterpret_cast<const unsigned char*>(data.data()),
                                data.size()) == 1;
  }
  std::optional<std::string> final() {
    unsigned char out[EVP_MAX_MD_SIZE];
    size_t length = 0;
    if (!ok_ || EVP_MAC_final(context_.get(), out, &length, sizeof out) != 1) return std::nullopt;
    return std::string(reinterpret_cast<char*>(out), length);
  }

 private:
  std::unique_ptr<EVP_MAC, decltype(&EVP_MAC_free)> mac_;
  std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> context_;
  bool ok_ = false;
};

Status decrypt(const Jwe& jwe, std::string_view key,
               const std::function<bool(std::string_view)>& sink) {
  if (jwe.header.contains("zip")) return fail("compressed JWE (zip) is not supported");
  if (jwe.header.contains("crit")) return fail("JWE critical header extensions are not supported");
  const std::string encName = stringMember(jwe.header, "enc");
  const Encryption* enc = nullptr;
  for (const Encryption& candidate : kEncryptions) {
    if (encName == candidate.name) enc = &candidate;
  }
  if (enc == nullptr) {
    return fail("JWE enc \"" + encName +
                "\" is not supported (A128GCM, A192GCM, A256GCM, A128CBC-HS256, A192CBC-HS384, "
                "A256CBC-HS512)");
  }
  std::string cek;
  if (Status status = contentKey(jwe, key, *enc, cek); !status.ok) return status;
  const bool gcm = enc->digest == nullptr;
  if (jwe.iv.size() != (gcm ? 12u : 16u)) return fail("the JWE iv has the wrong length");
  if (jwe.tag.size() != (gcm ? 16u : enc->keyBytes / 2)) {
    return fail("the JWE tag has the wrong length");
  }
  const std::string aad = jwe.protectedB64 + (jwe.aadB64.empty() ? "" : "." + jwe.aadB64);
  std::string_view encKey(cek);
  std::optional<Hmac> hmac;
  if (!gcm) {
    hmac.emplace(enc->digest, encKey.substr(0, enc->keyBytes / 2));
    encKey.remove_prefix(enc->keyBytes / 2);
    hmac->update(aad);
    hmac->update(jwe.iv);
  }
  CipherContext context(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  auto bytes = [](std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); };
  int length = 0;
  if (!context ||
      EVP_DecryptInit_ex(context.get(), enc->cipher(), nullptr, nullptr, nullptr) != 1 ||
      (gcm && EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_SET_IVLEN,
                                  static_cast<int>(jwe.iv.size()), nullptr) != 1) ||
      EVP_DecryptInit_ex(context.get(), nullptr, nullptr, bytes(encKey), bytes(jwe.iv)) != 1 ||
      (gcm && EVP_DecryptUpdate(context.get(), nullptr, &length, bytes(aad),
                                static_cast<int>(aad.size())) != 1)) {
    return fail("cannot set up the JWE decryption");
  }
  std::string_view rest = jwe.ciphertextB64;
  std::string piece;
  std::string plain;
  while (!rest.empty()) {
    std::string_view chunk = rest.substr(0, kPieceChars);
    rest.remove_prefix(chunk.size());
    piece.clear();
    if (!decodeBase64Url(chunk, piece)) return fail("the JWE ciphertext is not base64url");
    if (hmac) hmac->update(piece);
    plain.resize(piece.size() + 32);
    if (EVP_DecryptUpdate(context.get(), reinterpret_cast<unsigned char*>(plain.data()), &length,
                          bytes(piece), static_cast<int>(piece.size())) != 1) {
      return fail("the JWE ciphertext does not decrypt");
    }
    if (length > 0 && !sink(std::string_view(plain.data(), static_cast<size_t>(length)))) {
      return fail("cannot write the plaintext");
    }
  }
  if (hmac) {
    uint64_t aadBits = static_cast<uint64_t>(aad.size()) * 8;
    std::string lengthField(8, '\0');
    for (int i = 7; i >= 0; --i, aadBits >>= 8)
      lengthField[static_cast<size_t>(i)] = static_cast<char>(aadBits & 0xff);
    hmac->update(lengthField);
    std::optional<std::string> mac = hmac->final();
    if (!mac || CRYPTO_memcmp(mac->data(), jwe.tag.data(), jwe.tag.size()) != 0) {
      return fail("the JWE does not authenticate with this key (wrong key, or altered file)");
    }
  } else if (EVP_CIPHER_CTX_ctrl(context.get(), EVP_CTRL_GCM_SET_TAG,
                                 static_cast<int>(jwe.tag.size()),
                                 const_cast<char*>(jwe.tag.data())) != 1) {
    return fail("cannot set the JWE tag");
  }
  plain.resize(64);
  if (EVP_DecryptFinal_ex(context.get(), reinterpret_cast<unsigned char*>(plain.data()), &length) !=
      1) {
    return fail(gcm ? "the JWE does not authenticate with this key (wrong key, or altered file)"
                    : "the JWE plaintext has bad padding");
  }
  if (length > 0 && !sink(std::string_view(plain.data(), static_cast<size_t>(length)))) {
    return fail("cannot write the plaintext");
  }
  return Status::success();
}

// The repository, type and tag of CONFIDENTIAL_RESOURCE_ID.
Status resourceSegments(std::vector<std::string>& segments) {
  const std::string id = env("CONFIDENTIAL_RESOURCE_ID");
  if (id.empty())
    return fail("CONFIDENTIAL_ENABLED is true but CONFIDENTIAL_RESOURCE_ID is not set");
  std::string_view path(id);
  constexpr std::string_view kPrefix = "kbs:///";
  segments.clear();
  if (path.starts_with(kPrefix)) {
    path.remove_prefix(kPrefix.size());
    while (true) {
      size_t slash = path.find('/');
      segments.emplace_back(path.substr(0, slash));
      if (slash == std::string_view::npos) break;
      path.remove_prefix(slash + 1);
    }
  }
  if (segments.size() != 3 || segments[0].empty() || segments[1].empty() || segments[2].empty()) {
    return fail("CONFIDENTIAL_RESOURCE_ID \"" + id + "\" is not kbs:///<repository>/<type>/<tag>");
  }
  return Status::success();
}

// The key CDH releases for the resource.
Status fetchKey(const std::atomic<bool>* cancel, std::string& key) {
  std::vector<std::string> segments;
  if (Status status = resourceSegments(segments); !status.ok) return status;
  const std::string id = env("CONFIDENTIAL_RESOURCE_ID");
  std::string cdh = env("CDH_ADDR");
  if (cdh.empty()) cdh = kDefaultCdh;
  while (!cdh.empty() && cdh.back() == '/')
    cdh.pop_back();
  HttpRequest request;
  request.url = cdh + "/cdh/resource/" + percentEncode(segments[0], false) + "/" +
                percentEncode(segments[1], false) + "/" + percentEncode(segments[2], false);
  request.cancel = cancel;
  request.connectTimeout = std::chrono::seconds(5);
  request.timeout = std::chrono::seconds(30);
  HttpResponse response;
  // CDH starts beside the initializer in the guest and may not listen yet.
  for (int attempt = 1; attempt <= 3; ++attempt) {
    response = httpFetch(request);
    if (response.ok() || response.cancelled || !retryableAnswer(response)) break;
    if (attempt < 3) std::this_thread::sleep_for(std::chrono::milliseconds(500 * attempt));
  }
  if (!response.ok()) {
    return Status::failure("the Confidential Data Hub at " + redactUri(cdh) + " did not release " +
                           id + ": " + describeFailure(request, response));
  }
  if (response.body.empty()) {
    return Status::failure("the Confidential Data Hub released an empty key for " + id);
  }
  key = std::move(response.body);
  return Status::success();
}

bool isJwe(const fs::path& file) {
  std::string extension = toLower(file.extension().string());
  if (extension == ".jwe") return true;
  char head[3] = {};
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = ::read(fd, head, sizeof head);
  ::close(fd);
  return n == 3 && std::string_view(head, 3) == "eyJ";
}

// The file's bytes, mapped read-only (the ciphertext of a large model is read once, in order).
class Mapping {
 public:
  explicit Mapping(const fs::path& file) {
    fd_ = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat info {};
    if (fd_ < 0 || ::fstat(fd_, &info) != 0) return;
    size_ = static_cast<size_t>(info.st_size);
    mode_ = info.st_mode & 07777;
    if (size_ == 0) {
      ok_ = true;
      return;
    }
    void* data = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (data == MAP_FAILED) return;
    ::madvise(data, size_, MADV_SEQUENTIAL);
    data_ = static_cast<const char*>(data);
    ok_ = true;
  }
  ~Mapping() {
    if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  bool ok() const { return ok_; }
  std::string_view text() const { return {data_ == nullptr ? "" : data_, size_}; }
  mode_t mode() const { return mode_; }

 private:
  int fd_ = -1;
  const char* data_ = nullptr;
  size_t size_ = 0;
  mode_t mode_ = 0644;
  bool ok_ = false;
};

Status decryptFile(const fs::path& file, std::string_view key) {
  Mapping input(file);
  if (!input.ok())
    return Status::failure("cannot read " + file.string() + ": " + std::strerror(errno));
  fs::path output = file;
  if (toLower(file.extension().string()) == ".jwe") output.replace_extension();
  fs::path temporary = output;
  temporary += ".decrypting";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, input.mode());
  if (fd < 0) {
    return Status::failure("cannot write " + temporary.string() + ": " + std::strerror(errno));
  }
  int writeError = 0;
  auto sink = [&](std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::write(fd, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        writeError = errno;
        return false;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  };
  Status status = decryptJwe(input.text(), key, sink);
  if (::close(fd) != 0 && status.ok) writeError = errno;
  std::error_code ec;
  if (status.ok && writeError == 0) fs::rename(temporary, output, ec);
  if (!status.ok || writeError != 0 || ec) {
    fs::remove(temporary, ec);
    std::string why = !status.ok        ? status.message
                      : writeError != 0 ? std::string(std::strerror(writeError))
                                        : "cannot move the plaintext into place";
    return Status::failure("cannot decrypt " + file.string() + ": " + why, !status.ok);
  }
  if (output != file) fs::remove(file, ec);
  return Status::success();
}

}  // namespace

bool confidentialEnabled() {
  return toLower(trim(env("CONFIDENTIAL_ENABLED"))) == "true";
}

Status checkConfidentialSettings() {
  std::vector<std::string> segments;
  return resourceSegments(segments);
}

Status decryptJwe(std::string_view text, std::string_view key,
                  const std::function<bool(std::string_view)>& sink) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' ||
                           text.back() == '\t')) {
    text.remove_suffix(1);
  }
  Jwe jwe;
  Status status = !text.empty() && (text.front() == '{' || text.front() == '[')
                      ? parseJson(text, jwe)
                      : parseCompact(text, jwe);
  if (!status.ok) return status;
  return decrypt(jwe, key, sink);
}

Status decryptConfidential(const std::vector<std::string>& destinations,
                           const std::atomic<bool>* cancel) {
  std::string key;
  if (Status status = fetchKey(cancel, key); !status.ok) return status;
  for (const std::string& destination : destinations) {
    std::vector<fs::path> files;
    std::error_code ec;
    if (fs::is_regular_file(destination, ec)) {
      files.emplace_back(destination);
    } else {
      for (fs::recursive_directory_iterator it(destination, ec), end; !ec && it != end;
           it.increment(ec)) {
        if (it->is_regular_file(ec) && !it->is_symlink(ec)) files.push_back(it->path());
      }
      if (ec) return Status::failure("cannot walk " + destination + ": " + ec.message());
    }
    size_t decrypted = 0;
    for (const fs::path& file : files) {
      if (cancel != nullptr && cancel->load()) return Status::failure("cancelled");
      if (!isJwe(file)) continue;
      if (Status status = decryptFile(file, key); !status.ok) return status;
      ++decrypted;
    }
    spdlog::info("decrypted {} JWE file{} below {}", decrypted, decrypted == 1 ? "" : "s",
                 destination);
  }
  return Status::success();
}

}  // namespace storage
