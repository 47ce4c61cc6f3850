// Child processes for integration tests: the real kserve-agent binary and real peers.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace testsupport {

// A child process started with fork/exec. Its stdout and stderr go to a log file, which the
// test can read (and which is printed when a test fails and asks for it). The destructor kills
// the process if it still runs, so a failing test never leaves peers behind.
class Process {
 public:
  Process(std::vector<std::string> argv, std::map<std::string, std::string> extraEnv = {},
          std::vector<std::string> unsetEnv = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig) const;
  // Waits for the exit; returns the exit status (128+signal when killed), or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);
  bool running();
  // Everything the process wrote to stdout and stderr so far.
  std::string output() const;
  const std::string& logPath() const { return logPath_; }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string logPath_;
};

// How a function run in a forked child ended, and what it wrote.
struct ChildOutcome {
  bool exited = false;  // it returned or called exit (exitCode says with what)
  int exitCode = -1;
  int signal = 0;         // the signal that ended it (0 when it exited)
  bool timedOut = false;  // killed by runInChild after its timeout
  std::string out;        // stdout
  std::string err;        // stderr
};

// Runs `body` in a forked child of this test process, for what must not happen in the test
// process itself (aborts, exits, process-wide signal handlers, the default logger). The child
// gets Catch's fatal-signal handlers reset to the default actions, so that an abort ends it as
// an abort would end the binary, and leaves with _exit(body()), running no atexit handler (nor
// the leak check of the heap it copied). No Catch assertion may run in the child.
ChildOutcome runInChild(const std::function<int()>& body,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10));

// The path of a binary built by this project ("kserve-agent", "storage-initializer").
std::string builtBinary(const std::string& name);
// A path inside the source tree.
std::string sourcePath(const std::string& relative);
// A fresh empty directory under the system temp dir, removed with its contents at exit.
std::string makeTempDir(const std::string& prefix);
// Reads a whole file ("" when missing).
std::string readFile(const std::string& path);
void writeFile(const std::string& path, const std::string& content);

}  // namespace testsupport
