// OCI images, oci://<registry>/<repository>[:<tag>|@<digest>] (and oci+fetch://, as KServe's
// webhook writes it before normalising): the models/ folder of a modelcar image, read through
// the registry's distribution API. The manifest (an index resolves to this machine's
// linux/<GOARCH> image), then each tar layer as a blob, checked against its digest and size and
// unpacked with the archive rules of archive.cc, keeping only what lies below models/.
// Credentials come from the docker config KServe mounts (KSERVE_OCI_DOCKER_CONFIG): a user and
// password, or an identity token; registries that issue bearer tokens get one from the realm
// their 401 names (an identity token is traded there as an OAuth2 refresh token).
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "core/util/backoff.h"
#include "puller/storage/archive.h"
#include "puller/storage/oci.h"
#include "puller/storage/providers.h"
#include "puller/storage/util.h"

namespace storage {

namespace {

constexpr const char* kManifestTypes =
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json";
constexpr int kAttempts = 3;
constexpr const char* kDefaultDockerConfig = "/mnt/oci-fetch-auth/config.json";

// The architecture name images are indexed by (Go's GOARCH), for this build.
const char* goArch() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#else
  return "unknown";
#endif
}

bool validDigest(std::string_view digest) {
  if (!digest.starts_with("sha256:") || digest.size() != 7 + 64) return false;
  for (char c : digest.substr(7)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The OCI distribution spec's tag grammar: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
bool validTag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128 || tag.front() == '.' || tag.front() == '-') return false;
  for (char c : tag) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_' || c == '.' || c == '-';
    if (!allowed) return false;
  }
  return true;
}

// A host name or address with an optional port: nothing that could change the URL's meaning.
bool validRegistry(std::string_view registry) {
  if (registry.empty()) return false;
  for (char c : registry) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
    if (!allowed) return false;
  }
  return true;
}

bool validRepository(std::string_view repository) {
  if (repository.empty() || repository.front() == '/' || repository.back() == '/') return false;
  for (char c : repository) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                   c == '-' || c == '/';
    if (!allowed) return false;
  }
  return repository.find("//") == std::string_view::npos &&
         repository.find("..") == std::string_view::npos;
}

}  // namespace

std::optional<OciReference> parseOciReference(std::string_view uri) {
  std::string_view rest = uri.substr(uri.find("://") + 3);
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  OciReference image;
  image.registry = std::string(rest.substr(0, slash));
  std::string_view path = rest.substr(slash + 1);
  size_t at = path.find('@');
  if (at != std::string_view::npos) {
    image.reference = std::string(path.substr(at + 1));
    image.byDigest = true;
    path = path.substr(0, at);
    if (!validDigest(image.reference)) return std::nullopt;
  } else {
    size_t colon = path.rfind(':');
    if (colon != std::string_view::npos && path.find('/', colon) == std::string_view::npos) {
      image.reference = std::string(path.substr(colon + 1));
      path = path.substr(0, colon);
      if (!validTag(image.reference)) return std::nullopt;
    } else {
      image.reference = "latest";
    }
  }
  image.repository = std::string(path);
  if (!validRegistry(image.registry) || !validRepository(image.repository)) return std::nullopt;
  if (image.registry == "docker.io" || image.registry == "index.docker.io") {
    image.registry = "registry-1.docker.io";
    if (image.repository.find('/') == std::string::npos) {
      image.repository = "library/" + image.repository;
    }
  }
  return image;
}

bool ociInsecureRegistry(const std::string& registry) {
  std::string value = trim(env("KSERVE_OCI_INSECURE_REGISTRY"));
  std::string lower = toLower(value);
  if (lower == "true" || lower == "1" || lower == "yes") return true;
  size_t start = 0;
  while (start <= value.size()) {
    size_t comma = value.find(',', start);
    if (comma == std::string::npos) comma = value.size();
    std::string item = trim(std::string_view(value).substr(start, comma - start));
    if (!item.empty() && (item == registry || item == registry.substr(0, registry.find(':')))) {
      return true;
    }
    start = comma + 1;
  }
  return false;
}

OciChallenge parseOciChallenge(std::string_view header) {
  OciChallenge challenge;
  std::string_view text = header;
  size_t space = text.find(' ');
  challenge.scheme = toLower(trim(text.substr(0, space)));
  text = space == std::string_view::npos ? std::string_view() : text.substr(space + 1);
  while (!text.empty()) {
    while (!text.empty() && (text.front() == ' ' || text.front() == ','))
      text.remove_prefix(1);
    size_t equals = text.find('=');
    if (equals == std::string_view::npos) break;
    std::string name = toLower(trim(text.substr(0, equals)));
    text.remove_prefix(equals + 1);
    std::string value;
    if (!text.empty() && text.front() == '"') {
      size_t close = text.find('"', 1);
      if (close == std::string_view::npos) close = text.size();
      value = std::string(text.substr(1, close - 1));
      text.remove_prefix(std::min(close + 1, text.size()));
    } else {
      size_t comma = text.find(',');
      value = trim(text.substr(0, comma));
      text.remove_prefix(comma == std::string_view::npos ? text.size() : comma);
    }
    if (name == "realm") challenge.realm = value;
    if (name == "service") challenge.service = value;
    if (name == "scope") challenge.scope = value;
  }
  return challenge;
}

namespace {

// What the docker config holds for one registry.
struct RegistryCredentials {
  std::string basic;          // base64 of "user:password", as sent in Basic auth
  std::string identityToken;  // an OAuth2 refresh token (`docker login` to ACR writes one)
  bool empty() const { return basic.empty() && identityToken.empty(); }
};

// The docker config's entry for `registry` under "auths". A config that is missing is anonymous
// access; one that cannot be read fails. Credential helpers (credHelpers, credsStore) are
// programs on a workstation that a pod does not have: they are not run, and a registry that
// only they serve is read anonymously, with a warning.
Status dockerCredentials(const std::string& registry, RegistryCredentials& out) {
  std::string path = env("KSERVE_OCI_DOCKER_CONFIG");
  if (path.empty()) path = kDefaultDockerConfig;
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::success();
  std::optional<std::string> text = readTextFile(path);
  if (!text) return Status::failure("cannot read the docker config " + path, true);
  nlohmann::json config = nlohmann::json::parse(*text, nullptr, false);
  if (!config.is_object()) {
    return Status::failure("the docker config " + path + " is not a JSON object", true);
  }
  const nlohmann::json& auths = config.contains("auths") ? config["auths"] : nlohmann::json();
  std::string host = registry.substr(0, registry.find(':'));
  std::vector<std::string> keys = {registry, "https://" + registry, "http://" + registry, host};
  if (registry == "registry-1.docker.io") {
    keys.insert(keys.end(), {"https://index.docker.io/v1/", "index.docker.io", "docker.io"});
  }
  for (const std::string& key : keys) {
    if (!auths.is_object() || !auths.contains(key) || !auths[key].is_object()) continue;
    const nlohmann::json& entry = auths[key];
    auto field = [&](const char* name) {
      return entry.contains(name) && entry[name].is_string() ? entry[name].get<std::string>()
                                                             : std::string();
    };
    out.identityToken = field("identitytoken");
    if (std::string value = field("auth"); !value.empty()) {
      std::optional<std::string> decoded = base64Decode(value);
      if (!decoded || decoded->find(':') == std::string::npos) {
        return Status::failure("the docker config " + path + " has an \"auth\" for " + key +
                                   " that is not base64 of user:password",
                               true);
      }
      out.basic = value;
    } else if (!field("username").empty() && entry.contains("password")) {
      out.basic = base64Encode(field("username") + ":" + field("password"));
    }
    if (!out.empty()) return Status::success();
  }
  for (const char* helpers : {"credHelpers", "credsStore"}) {
    if (config.contains(helpers)) {
      spdlog::warn(
          "storage: the docker config {} names credential helpers ({}), which are not run; "
          "reading {} without the credentials they hold",
          path, helpers, registry);
      break;
    }
  }
  return Status::success();
}

// SHA-256 over a stream, chunk by chunk.
class StreamHash {
 public:
  StreamHash() : context_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    if (context_) EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr);
  }
  void update(std::string_view chunk) {
    if (context_) EVP_DigestUpdate(context_.get(), chunk.data(), chunk.size());
  }
  std::string hexDigest() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (!context_ || EVP_DigestFinal_ex(context_.get(), digest, &length) != 1) return "";
    return hex(std::string_view(reinterpret_cast<const char*>(digest), length));
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context_;
};

// Writes all of `chunk` to a socket; false once the reader is gone.
bool sendAll(int fd, std::string_view chunk) {
  while (!chunk.empty()) {
    ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    chunk.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads a socket to its end, dropping what comes (the padding after a tar's last entry), so
// that the download feeding it can finish.
void drain(int fd) {
  char buffer[1 << 14];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
  }
}

// One registry's API for one repository: requests carry the credentials the registry asks for
// (bearer tokens fetched from its realm, or Basic), retried on no answer, 408, 429 and 5xx.
class Registry {
 public:
  Registry(const OciReference& image, RegistryCredentials credentials,
           const std::atomic<bool>* cancel)
      : image_(image),
        basic_(std::move(credentials.basic)),
        identityToken_(std::move(credentials.identityToken)),
        insecure_(ociInsecureRegistry(image.registry)),
        cancel_(cancel) {}

  // GET of a path below /v2/<repository>/, kept in memory, or handed to `sink` when set.
  Status get(const std::string& path, const std::string& accept, const BodySink* sink,
             HttpRequest& request, HttpResponse& response) {
    bool answered401 = false;
    for (;;) {
      Status status = send(path, accept, sink, request, response);
      if (!status.ok) return status;
      if (response.status != 401) return Status::success();
      if (answered401) {
        return Status::failure("the registry " + image_.registry + " refused the " +
                                   (hasCredentials() ? "credentials" : "anonymous request") +
                                   " for " + image_.repository + ": " +
                                   describeFailure(request, response) + credentialHint(),
                               true);
      }
      answered401 = true;
      status = authorize(parseOciChallenge(response.wwwAuthenticate));
      if (!status.ok) return status;
    }
  }

 private:
  bool hasCredentials() const { return !basic_.empty() || !identityToken_.empty(); }

  std::string credentialHint() const {
    if (hasCredentials()) return "";
    std::string path = env("KSERVE_OCI_DOCKER_CONFIG");
    return " (no credentials for " + image_.registry + " in the docker config " +
           (path.empty() ? kDefaultDockerConfig : path) + ")";
  }

  Status send(const std::string& path, const std::string& accept, const BodySink* sink,
              HttpRequest& request, HttpResponse& response) {
    const core::Backoff backoff{std::chrono::milliseconds(500), std::chrono::seconds(20)};
    for (int attempt = 1;; ++attempt) {
      request = HttpRequest();
      request.url = (plainHttp_ ? "http://" : "https://") + image_.registry + "/v2/" +
                    image_.repository + "/" + path;
      request.cancel = cancel_;
      // Blobs may redirect to storage: curl drops Authorization on another host.
      request.followRedirects = true;
      applyDefaultTls(request);
      if (insecure_) request.verifyTls = false;
      if (!accept.empty()) request.headers.push_back("Accept: " + accept);
      if (!token_.empty()) {
        request.headers.push_back("Authorization: Bearer " + token_);
      } else if (sendBasic_) {
        request.headers.push_back("Authorization: Basic " + basic_);
      }
      response = sink == nullptr ? httpFetch(request) : httpFetchToSink(request, *sink);
      if (insecure_ && !plainHttp_ && response.status == 0 && !response.cancelled) {
        // An insecure registry that speaks plain http (as docker falls back).
        plainHttp_ = true;
        --attempt;
        continue;
      }
      // A stream that has begun cannot be sent again: what was consumed is gone.
      if (response.ok() || !retryableAnswer(response) || attempt >= kAttempts ||
          response.bytes > 0) {
        break;
      }
      spdlog::warn("storage: {}; retrying ({} of {})", describeFailure(request, response),
                   attempt + 1, kAttempts);
      if (!sleepUnlessCancelled(backoff.delay(attempt), cancel_)) break;
    }
    return Status::success();
  }

  Status authorize(const OciChallenge& challenge) {
    if (challenge.scheme == "basic") {
      if (basic_.empty()) {
        return Status::failure(
            "the registry " + image_.registry + " asks for credentials" +
                (identityToken_.empty() ? credentialHint()
                                        : " (Basic; the docker config holds only an identity "
                                          "token for it, which needs a token service)"),
            true);
      }
      sendBasic_ = true;
      return Status::success();
    }
    if (challenge.scheme != "bearer" || challenge.realm.empty()) {
      return Status::failure("the registry " + image_.registry +
                             " answered 401 without a Basic or Bearer challenge");
    }
    std::vector<std::pair<std::string, std::string>> query;
    if (!challenge.service.empty()) query.emplace_back("service", challenge.service);
    query.emplace_back("scope", challenge.scope.empty()
                                    ? "repository:" + image_.repository + ":pull"
                                    : challenge.scope);
    HttpRequest request;
    if (!identityToken_.empty()) {
      // The distribution spec's OAuth2 form: the identity token is a refresh token traded at
      // the realm (POST) for an access token; it is never sent to the registry itself.
      query.insert(query.begin(), {{"grant_type", "refresh_token"},
                                   {"client_id", "kserve-storage-initializer"},
                                   {"refresh_token", identityToken_}});
      request.method = "POST";
      request.url = challenge.realm;
      request.headers.push_back("Content-Type: application/x-www-form-urlencoded");
      request.body = formEncode(query);
    } else {
      request.url = challenge.realm + (challenge.realm.find('?') == std::string::npos ? "?" : "&") +
                    formEncode(query);
      if (!basic_.empty()) request.headers.push_back("Authorization: Basic " + basic_);
    }
    request.cancel = cancel_;
    applyDefaultTls(request);
    if (insecure_) request.verifyTls = false;
    HttpResponse response = httpFetch(request);
    if (!response.ok()) {
      // Refused credentials stay refused; a token service that is down may come back.
      return Status::failure("cannot get a token for " + image_.repository + ": " +
                                 describeFailure(request, response) + credentialHint(),
                             response.status == 401 || response.status == 403);
    }
    nlohmann::json answer = nlohmann::json::parse(response.body, nullptr, false);
    for (const char* field : {"token", "access_token"}) {
      if (answer.is_object() && answer.contains(field) && answer[field].is_string() &&
          !answer[field].get<std::string>().empty()) {
        token_ = answer[field].get<std::string>();
        return Status::success();
      }
    }
    return Status::failure("the token service " + redactUri(challenge.realm) +
                           " answered without a token");
  }

  const OciReference& image_;
  std::string basic_;
  std::string identityToken_;
  bool insecure_;
  const std::atomic<bool>* cancel_;
  bool plainHttp_ = false;
  bool sendBasic_ = false;
  std::string token_;
};

bool isIndex(const nlohmann::json& manifest, const std::string& contentType) {
  std::string type = manifest.contains("mediaType") && manifest["mediaType"].is_string()
                         ? manifest["mediaType"].get<std::string>()
                         : contentType;
  return type.find("index") != std::string::npos ||
         type.find("manifest.list") != std::string::npos ||
         (manifest.contains("manifests") && !manifest.contains("layers"));
}

// Picks linux/<GOARCH> from an index; "" (and `available` listing what there is) when absent.
std::string pickPlatform(const nlohmann::json& index, std::string& available) {
  if (!index.contains("manifests") || !index["manifests"].is_array()) return "";
  for (const auto& entry : index["manifests"]) {
    if (!entry.is_object() || !entry.contains("digest") || !entry["digest"].is_string()) continue;
    const nlohmann::json& platform =
        entry.contains("platform") ? entry["platform"] : nlohmann::json();
    std::string os = platform.is_object() ? platform.value("os", "") : "";
    std::string arch = platform.is_object() ? platform.value("architecture", "") : "";
    if (os == "linux" && arch == goArch()) return entry["digest"].get<std::string>();
    if (!os.empty() || !arch.empty())
      available += (available.empty() ? "" : ", ") + os + "/" + arch;
  }
  return "";
}

// Downloads one layer and unpacks its models/ entries as the bytes arrive (no copy of the
// layer on disk: a modelcar needs the model's size free, not twice it). The download runs on a
// thread of its own and feeds the unpacking through a socket pair; the unpacked entries move
// into the destination only once the layer was read whole and matched its digest and size.
Status fetchLayer(Registry& registry, const std::string& name, const std::string& digest,
                  std::optional<uint64_t> size, const fs::path& destination, size_t& kept) {
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0) {
    return Status::failure(std::string("cannot create a socket pair: ") + std::strerror(errno));
  }
  std::string what = "layer " + digest + " of " + name;
  StreamHash hash;
  BodySink sink{what, [&](std::string_view chunk) {
                  hash.update(chunk);
                  return sendAll(ends[1], chunk);
                }};
  HttpRequest request;
  HttpResponse response;
  Status fetched;
  std::thread download([&] {
    fetched = registry.get("blobs/" + digest, "", &sink, request, response);
    ::close(ends[1]);  // the end of the stream for the unpacking
  });
  bool joined = false;
  // Why the download failed, if it did: a better message than the truncated archive it leaves.
  auto downloadStatus = [&]() -> Status {
    if (!joined) download.join();
    joined = true;
    if (!fetched.ok) return fetched;
    if (!response.ok()) {
      return Status::failure("cannot download " + what + ": " + describeFailure(request, response),
                             response.status == 404);
    }
    if (size && *size != response.bytes) {
      return Status::failure(what + " is " + std::to_string(response.bytes) +
                             " bytes, the manifest says " + std::to_string(*size));
    }
    std::string actual = "sha256:" + hash.hexDigest();
    if (actual != digest) {
      return Status::failure(what + " does not match its digest (got " + actual + ")");
    }
    return Status::success();
  };
  Status status = extractStream(ends[0], what, destination, "models", kept, [&] {
    drain(ends[0]);
    return downloadStatus();
  });
  // An unpacking that gave up closes its end: the download's next write fails and it stops.
  ::close(ends[0]);
  if (joined) return status;
  // The unpacking failed before the stream ended. A download that failed on its own (no
  // answer, a digest that does not match) is the cause, not the archive it left cut short.
  Status downloaded = downloadStatus();
  bool stoppedByUs = response.error.starts_with("the reader of ");
  return !downloaded.ok && !stoppedByUs ? downloaded : status;
}

}  // namespace

bool isOciUri(std::string_view uri) {
  return uri.starts_with("oci://") || uri.starts_with("oci+fetch://");
}

Status downloadOci(const std::string& uri, const fs::path& destination,
                   const DownloadOptions& options, Downloaded& out) {
  std::optional<OciReference> image = parseOciReference(uri);
  if (!image) {
    return Status::failure(
        "expected oci://<registry>/<repository>[:<tag>|@sha256:<digest>] (lower-case repository)",
        true);
  }
  RegistryCredentials credentials;
  Status status = dockerCredentials(image->registry, credentials);
  if (!status.ok) return status;
  Registry registry(*image, std::move(credentials), options.cancel);
  std::string name =
      image->registry + "/" + image->repository + (image->byDigest ? "@" : ":") + image->reference;

  HttpRequest request;
  HttpResponse response;
  nlohmann::json manifest;
  std::string reference = image->reference;
  bool verifyDigest = image->byDigest;
  for (int depth = 0;; ++depth) {
    status = registry.get("manifests/" + reference, kManifestTypes, nullptr, request, response);
    if (!status.ok) return status;
    if (response.status == 404) return Status::failure("image " + name + " not found", true);
    if (!response.ok()) {
      return Status::failure("cannot read the manifest of " + name + ": " +
                             describeFailure(request, response));
    }
    if (verifyDigest && "sha256:" + sha256Hex(response.body) != reference) {
      return Status::failure("the manifest of " + name + " does not match its digest " + reference);
    }
    manifest = nlohmann::json::parse(response.body, nullptr, false);
    if (!manifest.is_object()) {
      return Status::failure("the manifest of " + name + " is not a JSON object");
    }
    if (!isIndex(manifest, response.contentType)) break;
    std::string available;
    std::string digest = pickPlatform(manifest, available);
    if (depth > 0 || digest.empty() || !validDigest(digest)) {
      return Status::failure("image " + name + " has no linux/" + goArch() + " manifest" +
                             (available.empty() ? "" : " (it has " + available + ")"));
    }
    reference = digest;
    verifyDigest = true;
  }
  if (!manifest.contains("layers") || !manifest["layers"].is_array()) {
    return Status::failure("the manifest of " + name + " lists no layers");
  }

  size_t kept = 0;
  size_t layers = 0;
  for (const auto& layer : manifest["layers"]) {
    std::string type = layer.is_object() ? layer.value("mediaType", "") : "";
    std::string digest = layer.is_object() ? layer.value("digest", "") : "";
    // Image layers are tars (plain, gzip or zstd); other blobs (artifacts, signatures) are not
    // part of the file system.
    if (type.find("tar") == std::string::npos) continue;
    if (!validDigest(digest)) {
      return Status::failure("the manifest of " + name + " has a layer with digest \"" + digest +
                             "\", not sha256:<hex>");
    }
    ++layers;
    std::optional<uint64_t> size;
    if (layer.contains("size") && layer["size"].is_number_unsigned()) {
      size = layer["size"].get<uint64_t>();
    }
    status = fetchLayer(registry, name, digest, size, destination, kept);
    if (!status.ok) return status;
  }
  if (layers == 0) return Status::failure("image " + name + " has no file system layers");
  if (kept == 0) return Status::failure("image " + name + " has no models/ folder", true);
  out.mayUnpack = false;
  return Status::success();
}

}  // namespace storage
