#include "tests/support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace testsupport {

namespace fs = std::filesystem;

namespace {

// Temp dirs made by this test process, removed at exit.
std::vector<std::string>& tempDirs() {
  static std::vector<std::string> dirs;
  return dirs;
}
std::mutex tempDirsMutex;

void removeTempDirs() {
  std::error_code ec;
  for (const auto& dir : tempDirs())
    fs::remove_all(dir, ec);
}

}  // namespace

Process::Process(std::vector<std::string> argv, std::map<std::string, std::string> extraEnv,
                 std::vector<std::string> unsetEnv) {
  logPath_ = makeTempDir("proc") + "/output.log";
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    std::string key = entry.substr(0, entry.find('='));
    bool dropped = extraEnv.contains(key);
    for (const auto& u : unsetEnv)
      dropped = dropped || u == key;
    if (!dropped) env.push_back(entry);
  }
  for (const auto& [k, v] : extraEnv)
    env.push_back(k + "=" + v);

  std::vector<char*> cargv;
  for (auto& a : argv)
    cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  for (auto& e : env)
    cenv.push_back(e.data());
  cenv.push_back(nullptr);

  int logFd = ::open(logPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (logFd < 0) throw std::runtime_error("cannot open " + logPath_);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::setpgid(0, 0);
    ::dup2(logFd, 1);
    ::dup2(logFd, 2);
    int devNull = ::open("/dev/null", O_RDONLY);
    ::dup2(devNull, 0);
    ::execve(cargv[0], cargv.data(), cenv.data());
    ::_exit(127);
  }
  ::close(logFd);
  if (pid_ < 0) throw std::runtime_error("fork failed");
}

Process::~Process() {
  if (running()) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(10));
  }
}

void Process::signal(int sig) const {
  if (pid_ > 0) ::kill(pid_, sig);
}

int Process::wait(std::chrono::milliseconds timeout) {
  if (status_ >= 0) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int raw = 0;
    pid_t r = ::waitpid(pid_, &raw, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
      return status_;
    }
    if (r < 0) return status_ = 255;
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool Process::running() {
  return pid_ > 0 && wait(std::chrono::milliseconds(0)) < 0;
}

std::string Process::output() const {
  return readFile(logPath_);
}

ChildOutcome runInChild(const std::function<int()>& body, std::chrono::milliseconds timeout) {
  std::string dir = makeTempDir("child");
  std::string outPath = dir + "/stdout";
  std::string errPath = dir + "/stderr";
  int outFd = ::open(outPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int errFd = ::open(errPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (outFd < 0 || errFd < 0) throw std::runtime_error("cannot open the output files in " + dir);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(outFd, 1);
    ::dup2(errFd, 2);
    for (int sig : {SIGABRT, SIGSEGV, SIGILL, SIGFPE, SIGTERM, SIGINT})
      ::signal(sig, SIG_DFL);
    // An exception must not return into the test runner: the child would carry on running
    // the rest of the tests.
    int code = 125;
    try {
      code = body();
    } catch (...) {
      std::fputs("runInChild: the child's body threw\n", stderr);
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  ::close(outFd);
  ::close(errFd);
  if (pid < 0) throw std::runtime_error("fork failed");
  ChildOutcome outcome;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int raw = 0;
  while (::waitpid(pid, &raw, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      outcome.timedOut = true;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &raw, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  outcome.exited = WIFEXITED(raw);
  outcome.exitCode = outcome.exited ? WEXITSTATUS(raw) : -1;
  outcome.signal = WIFSIGNALED(raw) ? WTERMSIG(raw) : 0;
  outcome.out = readFile(outPath);
  outcome.err = readFile(errPath);
  return outcome;
}

std::string builtBinary(const std::string& name) {
  std::string path = std::string(KSA_BINARY_DIR) + "/" + name;
  if (!fs::exists(path)) {
    for (const auto& sub : {"/agent/", "/puller/", "/tests/support/"}) {
      std::string candidate = std::string(KSA_BINARY_DIR) + sub + name;
      if (fs::exists(candidate)) return candidate;
    }
  }
  return path;
}

std::string sourcePath(const std::string& relative) {
  return std::string(KSA_SOURCE_DIR) + "/" + relative;
}

std::string makeTempDir(const std::string& prefix) {
  std::string pattern = (fs::temp_directory_path() / ("ksa-" + prefix + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  std::lock_guard lock(tempDirsMutex);
  if (tempDirs().empty()) std::atexit(removeTempDirs);
  tempDirs().push_back(pattern);
  return pattern;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeFile(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

}  // namespace testsupport
