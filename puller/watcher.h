// Watches the config folder (inotify) for the kubelet's ConfigMap swap (`..data` renamed into
// place) and for direct writes of models.json (close after write, or a rename onto it).
#pragma once

#include <string>

namespace puller {

class ConfigWatcher {
 public:
  explicit ConfigWatcher(std::string configDir);
  ~ConfigWatcher();
  ConfigWatcher(const ConfigWatcher&) = delete;
  ConfigWatcher& operator=(const ConfigWatcher&) = delete;

  // Blocks until a relevant change (true) or stop() (false). Changes arriving within a short
  // quiet period are reported once. A missing folder is retried every second and reported as a
  // change once it appears.
  bool waitForChange();
  // Wakes waitForChange() for good; callable from any thread.
  void stop();

 private:
  bool addWatch();

  std::string configDir_;
  int inotifyFd_ = -1;
  int stopFd_ = -1;
  int watch_ = -1;
};

}  // namespace puller
