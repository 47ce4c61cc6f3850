#include "puller/watcher.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace puller {
namespace {

constexpr int kQuietPeriodMs = 50;
constexpr int kRetryAddMs = 1000;

}  // namespace

ConfigWatcher::ConfigWatcher(std::string configDir) : configDir_(std::move(configDir)) {
  inotifyFd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  stopFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (inotifyFd_ < 0 || stopFd_ < 0) {
    spdlog::error("puller: cannot watch {}: {}", configDir_, std::strerror(errno));
  }
  addWatch();
}

ConfigWatcher::~ConfigWatcher() {
  if (inotifyFd_ >= 0) ::close(inotifyFd_);
  if (stopFd_ >= 0) ::close(stopFd_);
}

bool ConfigWatcher::addWatch() {
  if (inotifyFd_ < 0) return false;
  watch_ = ::inotify_add_watch(
      inotifyFd_, configDir_.c_str(),
      IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
  return watch_ >= 0;
}

void ConfigWatcher::stop() {
  if (stopFd_ < 0) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t written = ::write(stopFd_, &one, sizeof one);
}

bool ConfigWatcher::waitForChange() {
  bool changed = false;
  bool warned = false;
  for (;;) {
    if (watch_ < 0 && addWatch()) {
      changed = true;  // the folder appeared: read what it holds
    } else if (watch_ < 0 && !warned) {
      spdlog::warn("puller: config dir {} cannot be watched ({}); retrying", configDir_,
                   std::strerror(errno));
      warned = true;
    }
    pollfd fds[2] = {{stopFd_, POLLIN, 0}, {inotifyFd_, POLLIN, 0}};
    int timeout = changed ? kQuietPeriodMs : (watch_ < 0 ? kRetryAddMs : -1);
    int ready = ::poll(fds, inotifyFd_ >= 0 ? 2 : 1, timeout);
    if (ready < 0 && errno != EINTR) return false;
    if (fds[0].revents != 0) return false;
    if (ready == 0) {
      if (changed) return true;
      continue;
    }
    if ((fds[1].revents & POLLIN) == 0) continue;
    alignas(inotify_event) char buffer[16384];
    ssize_t length;
    while ((length = ::read(inotifyFd_, buffer, sizeof buffer)) > 0) {
      for (char* p = buffer; p < buffer + length;) {
        auto* event = reinterpret_cast<inotify_event*>(p);
        std::string_view name = event->len > 0 ? std::string_view(event->name) : "";
        if ((event->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) != 0) {
          watch_ = -1;  // the folder went away; re-add it when it comes back
        } else if (name == "..data" && (event->mask & (IN_CREATE | IN_MOVED_TO)) != 0) {
          changed = true;
        } else if (name == "models.json" && (event->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) != 0) {
          changed = true;
        }
        p += sizeof(inotify_event) + event->len;
      }
    }
  }
}

}  // namespace puller
