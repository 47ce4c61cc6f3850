// Runs a helper program (git, git-lfs) for a storage provider: no shell, stdin from /dev/null,
// stdout and stderr captured, a deadline, and cancellation. The child and everything it starts
// run in their own process group, which is killed whole on timeout or cancel.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace storage {

struct SpawnRequest {
  std::vector<std::string> argv;  // argv[0] is an absolute path or a name looked up in PATH
  std::string workingDirectory;   // "" keeps the current one
  // Variables set (a value) or removed (nullopt) on top of this process's environment.
  std::map<std::string, std::optional<std::string>> environment;
  std::chrono::milliseconds timeout{std::chrono::hours(1)};
  const std::atomic<bool>* cancel = nullptr;
};

struct SpawnResult {
  bool started = false;
  int exitCode = -1;  // the exit status; 128 + signal when a signal ended the child
  bool timedOut = false;
  bool cancelled = false;
  std::string error;  // why it could not start ("" when it did)
  std::string out;    // stdout (the first 16 MiB)
  std::string err;    // stderr (the last 64 KiB)
  bool ok() const { return started && exitCode == 0 && !timedOut && !cancelled; }
  // The last non-empty line of stderr, for one-line error messages.
  std::string lastErrorLine() const;
};

SpawnResult spawnAndWait(const SpawnRequest& request);

}  // namespace storage
