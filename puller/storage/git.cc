// git sources, by spawning Debian's git and git-lfs rather than linking libgit2: bookworm's
// libgit2 1.5 has no shallow clone (depth arrived in 1.7) and no LFS, so it would fetch the whole
// history of a model repository and leave its large files as pointers. The git binary speaks
// smart HTTP, git:// and protocol v2, and git-lfs plugs into its checkout as a filter.
#include "puller/storage/git.h"

#include <spdlog/spdlog.h>
#include <stdlib.h>

#include "puller/storage/providers.h"
#include "puller/storage/spawn.h"
#include "puller/storage/util.h"

namespace storage::git {

namespace {

// The path part of a URI (after the authority), without query or fragment.
std::string_view uriPath(std::string_view uri) {
  size_t scheme = uri.find("://");
  if (scheme == std::string_view::npos) return {};
  std::string_view rest = uri.substr(scheme + 3);
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return {};
  std::string_view path = rest.substr(slash);
  return path.substr(0, path.find_first_of("?#"));
}

// Where the ref starts in an http(s) path: right after ".git@"; npos when there is none.
size_t refSeparator(std::string_view path) {
  size_t at = path.find(".git@");
  return at == std::string_view::npos ? at : at + 4;
}

}  // namespace

bool isGitUri(std::string_view uri) {
  if (uri.starts_with("git://")) return true;
  if (!uri.starts_with("http://") && !uri.starts_with("https://")) return false;
  std::string_view path = uriPath(uri);
  return path.ends_with(".git") || path.ends_with(".git/") ||
         refSeparator(path) != std::string_view::npos;
}

std::optional<GitUri> parseGitUri(std::string_view uri, std::string& problem) {
  if (!isGitUri(uri)) {
    problem = "not a git URI";
    return std::nullopt;
  }
  GitUri out;
  size_t schemeEnd = uri.find("://") + 3;
  std::string_view scheme = uri.substr(0, schemeEnd);
  std::string_view rest = uri.substr(schemeEnd);
  rest = rest.substr(0, rest.find_first_of("?#"));
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    size_t colon = userinfo.find(':');
    out.username = std::string(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) out.password = std::string(userinfo.substr(colon + 1));
  }
  if (authority.empty()) {
    problem = "no host in the URI";
    return std::nullopt;
  }
  // http(s) repositories end in ".git", so the ref follows ".git@"; a git:// path has no such
  // marker, so its first '@' starts the ref.
  size_t refAt = scheme == "git://" ? path.find('@') : refSeparator(path);
  if (refAt != std::string_view::npos) {
    out.ref = std::string(path.substr(refAt + 1));
    path = path.substr(0, refAt);
    if (out.ref.empty()) {
      problem = "an empty ref after '@'";
      return std::nullopt;
    }
    // A ref starting with '-' would read as an option to git; git's own rules refuse these too.
    if (out.ref.starts_with('-') || out.ref.find_first_of(" ~^:?*[\\") != std::string::npos ||
        out.ref.find("..") != std::string::npos) {
      problem = "the ref \"" + out.ref + "\" is not a valid branch, tag or commit name";
      return std::nullopt;
    }
  }
  if (path.empty() || path == "/") {
    problem = "no repository path in the URI";
    return std::nullopt;
  }
  out.remote = std::string(scheme) + std::string(authority) + std::string(path);
  return out;
}

namespace {

// The host as the `<host>-headers` variable names it (no port, no IPv6 brackets), as http.cc.
std::string headerHost(const std::string& remote) {
  std::string_view rest = std::string_view(remote).substr(remote.find("://") + 3);
  rest = rest.substr(0, rest.find('/'));
  if (rest.starts_with('[')) return std::string(rest.substr(1, rest.find(']') - 1));
  return std::string(rest.substr(0, rest.find(':')));
}

long timeoutSeconds() {
  std::string text = env("STORAGE_GIT_TIMEOUT");
  long value = text.empty() ? 0 : std::strtol(text.c_str(), nullptr, 10);
  return value > 0 ? value : 3600;
}

}  // namespace

}  // namespace storage::git

namespace storage {

Status downloadGit(const std::string& uri, const fs::path& destination,
                   const DownloadOptions& options, Downloaded& out) {
  std::string problem;
  auto parsed = git::parseGitUri(uri, problem);
  if (!parsed) return Status::failure(problem, true);

  // Headers reach git through GIT_CONFIG_* variables, never argv or the URL, so they show
  // neither in the process list nor in git's own messages (which quote the URL).
  std::vector<std::pair<std::string, std::string>> config{
      {"advice.detachedHead", "false"},
      {"init.defaultBranch", "main"},
      // LFS objects are fetched during the checkout, as `git lfs install` would set up.
      {"filter.lfs.process", "git-lfs filter-process"},
      {"filter.lfs.smudge", "git-lfs smudge -- %f"},
      {"filter.lfs.clean", "git-lfs clean -- %f"},
      {"filter.lfs.required", "true"},
      // The storage library's stall rule: slower than 1 KiB/s for 60 s fails.
      {"http.lowSpeedLimit", "1024"},
      {"http.lowSpeedTime", "60"},
  };
  bool hasAuthorization = false;
  std::string host = git::headerHost(parsed->remote);
  std::vector<std::pair<std::string, std::string>> headers;
  if (Status status = hostHeaders(host, headers); !status.ok) return status;
  for (const auto& [name, value] : headers) {
    if (toLower(name) == "authorization") hasAuthorization = true;
    config.emplace_back("http.extraHeader", name + ": " + value);
  }
  std::string username = parsed->username.empty() ? env("GIT_USERNAME") : parsed->username;
  std::string password = parsed->password.empty() ? env("GIT_PASSWORD") : parsed->password;
  if (!hasAuthorization && (!username.empty() || !password.empty())) {
    if (parsed->remote.starts_with("git://")) {
      spdlog::warn("storage: git:// has no authentication; the git credentials are not used");
    } else {
      config.emplace_back("http.extraHeader",
                          "Authorization: Basic " + base64Encode(username + ":" + password));
    }
  }

  // The repository lives in a hidden folder beside the files it checks out, on the same file
  // system (LFS objects are stored there before they are copied out), and is removed after.
  std::string gitDirTemplate = (destination / ".git-tmp-XXXXXX").string();
  if (::mkdtemp(gitDirTemplate.data()) == nullptr) {
    return Status::failure("cannot create a folder in " + destination.string());
  }
  fs::path gitDir = gitDirTemplate;
  struct Cleanup {
    fs::path path;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  } cleanup{gitDir};

  SpawnRequest base;
  base.workingDirectory = destination.string();
  base.cancel = options.cancel;
  base.timeout = std::chrono::seconds(git::timeoutSeconds());
  base.environment = {
      {"GIT_DIR", gitDir.string()},
      {"GIT_WORK_TREE", destination.string()},
      {"GIT_TERMINAL_PROMPT", "0"},
      {"GIT_ASKPASS", "/bin/false"},
      {"SSH_ASKPASS", std::nullopt},
      {"GIT_CONFIG_NOSYSTEM", "1"},
      {"GIT_CONFIG_GLOBAL", "/dev/null"},
      {"GIT_CONFIG_COUNT", std::to_string(config.size())},
      {"GIT_LFS_SKIP_SMUDGE", std::nullopt},
      {"GIT_INDEX_FILE", std::nullopt},
      {"GIT_OBJECT_DIRECTORY", std::nullopt},
      {"GIT_ALTERNATE_OBJECT_DIRECTORIES", std::nullopt},
      // Traces would write the Authorization header to stderr, which ends up in errors.
      {"GIT_TRACE", std::nullopt},
      {"GIT_TRACE_CURL", std::nullopt},
      {"GIT_TRACE_PACKET", std::nullopt},
      {"GIT_CURL_VERBOSE", std::nullopt},
      {"GIT_TRANSFER_TRACE", std::nullopt},
  };
  for (size_t i = 0; i < config.size(); ++i) {
    base.environment["GIT_CONFIG_KEY_" + std::to_string(i)] = config[i].first;
    base.environment["GIT_CONFIG_VALUE_" + std::to_string(i)] = config[i].second;
  }
  std::string caFile = envFirst({"REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"});
  if (!caFile.empty()) base.environment["GIT_SSL_CAINFO"] = caFile;

  std::string ref = parsed->ref.empty() ? "HEAD" : parsed->ref;
  std::vector<std::pair<std::string, std::vector<std::string>>> steps{
      {"git init", {"git", "init", "-q"}},
      {"git remote add", {"git", "remote", "add", "origin", parsed->remote}},
      {"git fetch",
       {"git", "fetch", "-q", "--depth", "1", "--no-tags", "origin", "--end-of-options", ref}},
      {"git checkout", {"git", "checkout", "-q", "-f", "FETCH_HEAD"}},
      {"git ls-tree", {"git", "ls-tree", "-r", "-z", "--name-only", "FETCH_HEAD"}},
  };
  for (const auto& [name, argv] : steps) {
    SpawnRequest request = base;
    request.argv = argv;
    SpawnResult result = spawnAndWait(request);
    if (result.ok()) {
      if (name == "git ls-tree") {
        for (size_t start = 0, end; (end = result.out.find('\0', start)) != std::string::npos;
             start = end + 1) {
          out.files.emplace_back(result.out.substr(start, end - start));
        }
      }
      continue;
    }
    if (!result.started) return Status::failure(name + " could not start: " + result.error);
    if (result.cancelled) return Status::failure(name + " cancelled");
    if (result.timedOut) {
      return Status::failure(name + " took longer than " + std::to_string(git::timeoutSeconds()) +
                             " s (STORAGE_GIT_TIMEOUT)");
    }
    std::string line = result.lastErrorLine();
    if (name == "git fetch" && !parsed->ref.empty() &&
        line.find("couldn't find remote ref") != std::string::npos) {
      return Status::failure("the repository has no branch, tag or commit \"" + parsed->ref + "\"");
    }
    return Status::failure(name + " failed (exit " + std::to_string(result.exitCode) +
                           "): " + (line.empty() ? "no message" : line));
  }
  // A checkout of a git repository is never unpacked: a tar file in it is part of the model.
  out.mayUnpack = false;
  return Status::success();
}

}  // namespace storage
