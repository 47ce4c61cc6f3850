// HDFS through its WebHDFS REST API (Hadoop's HTTP interface of the namenode; the RPC protocol
// needs a JVM or libhdfs3, neither of which Debian ships):
//   GET {namenode}/webhdfs/v1{path}?op=GETFILESTATUS | LISTSTATUS | GETHOMEDIRECTORY
//   GET {namenode}/webhdfs/v1{path}?op=OPEN → 307 to a datanode, which sends the bytes.
// Settings come as files in the secret folder the webhook mounts (HDFS_SECRET_DIR, else
// /var/secrets/kserve-hdfscreds), one key per file, as upstream reads them, or as the keys of a
// STORAGE_CONFIG of type hdfs or webhdfs (storage_config.h), which win. On Kerberos
// clusters (KERBEROS_PRINCIPAL + KERBEROS_KEYTAB) a ticket is obtained with kinit and each
// namenode request authenticates with SPNEGO through libcurl's GSS-API; the datanodes are reached
// with the delegation token the namenode puts in its redirect.
//
// Which part of the URI names the namenode:
//   - when HDFS_NAMENODE is configured, everything after "hdfs://" (or "webhdfs://") is the path,
//     as upstream reads it: hdfs://user/me/model is /user/me/model (or, when HDFS_ROOTPATH is
//     set, user/me/model below it);
//   - otherwise the authority is the namenode's WebHDFS address, as the seed and Hadoop write
//     it: hdfs://namenode:9870/user/me/model (http; swebhdfs:// is https). The port is the HTTP
//     port (9870, 50070 before Hadoop 3), not the RPC port 8020; it defaults to 9870.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cctype>
#include <cstring>

#include "puller/storage/parallel.h"
#include "puller/storage/providers.h"
#include "puller/storage/spawn.h"
#include "puller/storage/storage_config.h"
#include "puller/storage/util.h"

namespace storage {

namespace {

struct HdfsConfig {
  std::string namenode;   // scheme://host:port, no trailing '/'
  std::string user;       // user.name (simple authentication)
  std::string proxyUser;  // doas
  std::string rootPath;
  std::vector<std::string> headers;
  std::string caFile;
  std::string certFile;
  std::string keyFile;
  bool verifyTls = true;
  size_t threads = 2;
  std::string kerberosPrincipal;
  std::string kerberosKeytab;  // the file's path
};

std::string secretDir() {
  std::string dir = env("HDFS_SECRET_DIR");
  return dir.empty() ? "/var/secrets/kserve-hdfscreds" : dir;
}

// The keys of a STORAGE_CONFIG of type hdfs/webhdfs as the files of a secret folder, as upstream
// turns them into one: a private temporary folder (0700, files 0600), removed with this object.
// Kerberos keytabs and TLS files arrive base64-encoded in the JSON and are decoded; curl and kinit
// take them as files.
class SpecSecretFolder {
 public:
  SpecSecretFolder() = default;
  ~SpecSecretFolder() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  SpecSecretFolder(const SpecSecretFolder&) = delete;
  SpecSecretFolder& operator=(const SpecSecretFolder&) = delete;

  const std::string& path() const { return path_; }

  Status create(const std::map<std::string, std::string>& settings) {
    std::string base = env("TMPDIR");
    std::string pattern = (base.empty() ? std::string("/tmp") : base) + "/ksa-hdfs-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      return Status::failure("cannot create a folder for the STORAGE_CONFIG keys: " +
                             std::string(std::strerror(errno)));
    }
    path_ = pattern;
    for (const auto& [key, value] : settings) {
      // A key is a file name; one that is no plain name cannot be a secret's key.
      if (key.empty() || key.find('/') != std::string::npos || key == "." || key == "..") continue;
      std::string content = value;
      if (key == "KERBEROS_KEYTAB" || key == "TLS_CERT" || key == "TLS_KEY" || key == "TLS_CA") {
        // Line breaks and spaces are dropped first, as Python's b64decode drops them: `base64`
        // wraps its output at 76 columns.
        std::string compact;
        for (char c : value)
          if (!std::isspace(static_cast<unsigned char>(c))) compact += c;
        auto decoded = base64Decode(compact);
        // The value is a secret: name the key, never what it holds.
        if (!decoded) return Status::failure("STORAGE_CONFIG key " + key + " is not base64", true);
        content = std::move(*decoded);
      }
      const std::string file = path_ + "/" + key;
      const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      bool written = fd >= 0 && ::write(fd, content.data(), content.size()) ==
                                    static_cast<ssize_t>(content.size());
      if (fd >= 0 && ::close(fd) != 0) written = false;
      if (!written) return Status::failure("cannot write the STORAGE_CONFIG key " + key);
    }
    return Status::success();
  }

 private:
  std::string path_;
};

// The trimmed content of a key of the secret ("" when absent).
std::string secretValue(const std::string& dir, const char* key) {
  std::error_code ec;
  fs::path path = fs::path(dir) / key;
  if (!fs::is_regular_file(path, ec)) return "";
  return trim(readTextFile(path.string()).value_or(""));
}

Status loadConfig(const std::string& dir, HdfsConfig& config) {
  config.namenode = secretValue(dir, "HDFS_NAMENODE");
  while (!config.namenode.empty() && config.namenode.back() == '/')
    config.namenode.pop_back();
  config.proxyUser = secretValue(dir, "USER_PROXY");
  config.rootPath = secretValue(dir, "HDFS_ROOTPATH");
  config.user = env("HADOOP_USER_NAME");
  std::string headers = secretValue(dir, "HEADERS");
  if (!headers.empty()) {
    nlohmann::json parsed = nlohmann::json::parse(headers, nullptr, false);
    if (!parsed.is_object()) return Status::failure("HEADERS is not a JSON object", true);
    for (const auto& [name, value] : parsed.items()) {
      if (!value.is_string()) return Status::failure("HEADERS is not a JSON object", true);
      config.headers.push_back(name + ": " + value.get<std::string>());
    }
  }
  // The TLS keys hold PEM text; curl takes the files they are mounted as.
  auto file = [&](const char* key) {
    return secretValue(dir, key).empty() ? std::string() : (fs::path(dir) / key).string();
  };
  config.caFile = file("TLS_CA");
  config.certFile = file("TLS_CERT");
  config.keyFile = file("TLS_KEY");
  std::string skip = toLower(secretValue(dir, "TLS_SKIP_VERIFY"));
  config.verifyTls = !(skip == "true" || skip == "1" || skip == "yes");
  std::string threads = secretValue(dir, "N_THREADS");
  if (!threads.empty()) {
    long value = std::strtol(threads.c_str(), nullptr, 10);
    if (value < 1 || value > 64) return Status::failure("N_THREADS is not 1 to 64", true);
    config.threads = static_cast<size_t>(value);
  }
  config.kerberosPrincipal = secretValue(dir, "KERBEROS_PRINCIPAL");
  config.kerberosKeytab = file("KERBEROS_KEYTAB");
  if (config.kerberosPrincipal.empty() != config.kerberosKeytab.empty()) {
    return Status::failure("Kerberos needs both KERBEROS_PRINCIPAL and KERBEROS_KEYTAB", true);
  }
  return Status::success();
}

// Gets a ticket for the principal from the keytab into the default credential cache
// (KRB5CCNAME, else the user's), where libcurl's GSS-API finds it for SPNEGO. kinit (Debian
// krb5-user) rather than libkrb5 calls: the cache must be the one GSS-API reads, which a
// separate process fills without changing this process's environment.
Status kerberosLogin(const HdfsConfig& config, const DownloadOptions& options) {
  SpawnRequest request;
  request.argv = {"kinit", "-k", "-t", config.kerberosKeytab, "--", config.kerberosPrincipal};
  request.timeout = std::chrono::seconds(60);
  request.cancel = options.cancel;
  SpawnResult result = spawnAndWait(request);
  if (result.ok()) return Status::success();
  if (!result.started) return Status::failure("kinit could not start: " + result.error);
  if (result.timedOut) return Status::failure("kinit took longer than 60 s");
  std::string line = result.lastErrorLine();
  return Status::failure("kinit for " + config.kerberosPrincipal + " failed: " +
                         (line.empty() ? "exit " + std::to_string(result.exitCode) : line));
}

class WebHdfs {
 public:
  WebHdfs(const HdfsConfig& config, const DownloadOptions& options)
      : config_(config), options_(options) {}

  HttpRequest request(const std::string& path, const std::string& op,
                      const std::string& extra = "") const {
    HttpRequest request;
    request.url = config_.namenode + "/webhdfs/v1" + percentEncode(path, true) + "?op=" + op;
    // With Kerberos the identity is the ticket's; user.name is for simple authentication only.
    bool kerberos = !config_.kerberosPrincipal.empty();
    if (!kerberos && !config_.user.empty()) {
      request.url += "&user.name=" + percentEncode(config_.user, false);
    }
    if (!config_.proxyUser.empty()) {
      request.url += "&doas=" + percentEncode(config_.proxyUser, false);
    }
    request.url += extra;
    request.headers = config_.headers;
    request.caFile = config_.caFile;
    request.clientCertFile = config_.certFile;
    request.clientKeyFile = config_.keyFile;
    request.verifyTls = config_.verifyTls;
    request.negotiate = kerberos;
    request.cancel = options_.cancel;
    return request;
  }

  // A JSON answer, or the RemoteException's message as the failure.
  Status fetchJson(const std::string& path, const std::string& op, nlohmann::json& out) const {
    HttpRequest req = request(path, op);
    HttpResponse response = httpFetch(req);
    if (!response.error.empty()) return Status::failure(describeFailure(req, response));
    out = nlohmann::json::parse(response.body, nullptr, false);
    if (!response.ok()) return Status::failure(remoteError(req, response, out));
    if (!out.is_object()) return Status::failure(op + " " + path + ": the answer is not JSON");
    return Status::success();
  }

  Status download(const std::string& path, const fs::path& file, uint64_t size) const {
    // The namenode answers 307 with the datanode that holds the blocks; the client settings
    // (certificates, headers) go along to it.
    HttpRequest req = request(path, "OPEN");
    req.followRedirects = true;
    HttpResponse response = httpFetchToFile(req, file.string());
    if (!response.error.empty()) return Status::failure(describeFailure(req, response));
    if (!response.ok()) {
      nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
      return Status::failure(remoteError(req, response, body));
    }
    return checkSize({path, file.filename(), size}, response.bytes);
  }

 private:
  static std::string remoteError(const HttpRequest& req, const HttpResponse& response,
                                 const nlohmann::json& body) {
    std::string text = describeFailure(req, response);
    if (body.is_object() && body.contains("RemoteException") &&
        body["RemoteException"].is_object()) {
      const auto& remote = body["RemoteException"];
      std::string exception = remote.value("exception", "");
      std::string message = remote.value("message", "");
      text = std::to_string(response.status) + " " + exception + ": " + message;
    }
    if (response.status == 401 || response.status == 403) text += " (access denied)";
    return text;
  }

  const HdfsConfig& config_;
  const DownloadOptions& options_;
};

struct HdfsFile {
  std::string path;   // absolute HDFS path
  fs::path relative;  // below the destination
  uint64_t size = 0;
};

Status walk(const WebHdfs& client, const std::string& path, const fs::path& relative,
            const Patterns* topLevel, std::vector<HdfsFile>& files, int depth) {
  if (depth > 64) return Status::failure(path + ": folders nested deeper than 64 levels");
  nlohmann::json listing;
  Status status = client.fetchJson(path, "LISTSTATUS", listing);
  if (!status.ok) return status;
  const auto* entries = listing.contains("FileStatuses") && listing["FileStatuses"].is_object() &&
                                listing["FileStatuses"].contains("FileStatus")
                            ? &listing["FileStatuses"]["FileStatus"]
                            : nullptr;
  if (entries == nullptr || !entries->is_array()) {
    return Status::failure("LISTSTATUS " + path + ": no FileStatuses in the answer");
  }
  for (const auto& entry : *entries) {
    std::string name = entry.value("pathSuffix", "");
    std::string type = entry.value("type", "");
    auto safe = safeRelativePath(name);
    if (!safe || name.find('/') != std::string::npos) {
      return Status::failure("LISTSTATUS " + path + ": unusable entry name \"" + name + "\"");
    }
    // Upstream applies the patterns to the names directly inside the folder asked for.
    if (topLevel != nullptr && !topLevel->keeps(name)) continue;
    std::string child = path == "/" ? "/" + name : path + "/" + name;
    if (type == "DIRECTORY") {
      status = walk(client, child, relative / name, nullptr, files, depth + 1);
      if (!status.ok) return status;
    } else if (type == "FILE") {
      files.push_back({child, relative / name, entry.value("length", uint64_t{0})});
    }
  }
  return Status::success();
}

std::string joinPath(const std::string& base, const std::string& rest) {
  if (rest.empty()) return base;
  return base.ends_with('/') ? base + rest : base + "/" + rest;
}

}  // namespace

Status downloadHdfs(const std::string& uri, const fs::path& destination,
                    const DownloadOptions& options, Downloaded& out) {
  StorageSpec spec;
  SpecSecretFolder specFolder;
  if (storageSpecFromEnv(spec).ok && (spec.type == "hdfs" || spec.type == "webhdfs")) {
    if (Status made = specFolder.create(spec.hdfsSettings); !made.ok) return made;
  }
  HdfsConfig config;
  Status status = loadConfig(specFolder.path().empty() ? secretDir() : specFolder.path(), config);
  if (!status.ok) return status;
  std::string scheme = uri.substr(0, uri.find("://"));
  std::string rest = uri.substr(scheme.size() + 3);
  rest = rest.substr(0, rest.find_first_of("?#"));
  if (!config.kerberosPrincipal.empty()) {
    status = kerberosLogin(config, options);
    if (!status.ok) return status;
  }
  std::string path;
  WebHdfs client(config, options);
  if (config.namenode.empty()) {
    size_t slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    if (authority.empty()) {
      return Status::failure(
          "no namenode: expected " + scheme +
              "://<namenode>:<http port>/<path>, or HDFS_NAMENODE in the HDFS secret",
          true);
    }
    bool bracketed = authority.starts_with('[');
    size_t colon = authority.rfind(':');
    bool hasPort = colon != std::string::npos && (!bracketed || colon > authority.find(']'));
    config.namenode =
        (scheme == "swebhdfs" ? "https://" : "http://") + authority + (hasPort ? "" : ":9870");
    path = slash == std::string::npos ? "/" : rest.substr(slash);
  } else if (rest.starts_with('/')) {
    path = rest;
  } else if (config.rootPath.empty()) {
    path = "/" + rest;
  } else {
    std::string root = config.rootPath;
    if (!root.starts_with('/')) {
      nlohmann::json home;
      status = client.fetchJson("/", "GETHOMEDIRECTORY", home);
      if (!status.ok) return status;
      if (!home.contains("Path") || !home["Path"].is_string()) {
        return Status::failure("GETHOMEDIRECTORY: no Path in the answer");
      }
      root = joinPath(home["Path"].get<std::string>(), root);
    }
    path = joinPath(root, rest);
  }
  while (path.size() > 1 && path.back() == '/')
    path.pop_back();

  nlohmann::json info;
  status = client.fetchJson(path, "GETFILESTATUS", info);
  if (!status.ok) return status;
  std::vector<HdfsFile> files;
  const nlohmann::json& fileStatus = info.contains("FileStatus") ? info["FileStatus"] : info;
  std::string type = fileStatus.is_object() ? fileStatus.value("type", "") : "";
  if (type == "FILE") {
    std::string name = path.substr(path.rfind('/') + 1);
    files.push_back({path, name, fileStatus.value("length", uint64_t{0})});
  } else if (type == "DIRECTORY") {
    status = walk(client, path, {}, &options.patterns, files, 0);
    if (!status.ok) return status;
    if (files.empty()) {
      return Status::failure(options.patterns.empty()
                                 ? "the folder has no files"
                                 : "the allow/ignore patterns leave no file of the folder");
    }
  } else {
    return Status::failure("GETFILESTATUS " + path + ": neither a file nor a folder");
  }

  status = runParallel(files.size(), config.threads, [&](size_t i) {
    fs::path file;
    Status prepared = prepareFile(destination, files[i].relative, file);
    if (!prepared.ok) return prepared;
    Status fetched = client.download(files[i].path, file, files[i].size);
    if (!fetched.ok)
      return Status::failure("failed to download " + files[i].path + ": " + fetched.message);
    return fetched;
  });
  if (!status.ok) return status;
  for (const auto& file : files)
    out.files.push_back(file.relative);
  return Status::success();
}

}  // namespace storage
