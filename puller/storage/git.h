// git repositories as model sources: which URIs are git, and the URI split into remote and ref.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace storage::git {

// git:// URIs, and http(s):// URIs whose path ends in ".git" (optionally "/" or "@<ref>" after
// it). Other http(s) URIs are plain file downloads.
bool isGitUri(std::string_view uri);

struct GitUri {
  std::string remote;    // the URI given to git: no user info, no ref, no query
  std::string username;  // from the URI's user info
  std::string password;  // from the URI's user info
  std::string ref;       // branch, tag or commit after '@'; "" for the default branch
};

// Splits a git URI; nullopt with `problem` set when it cannot be one.
std::optional<GitUri> parseGitUri(std::string_view uri, std::string& problem);

}  // namespace storage::git
