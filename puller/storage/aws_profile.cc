#include "puller/storage/aws_profile.h"

#include "puller/storage/util.h"

namespace storage::aws {

namespace {

std::string home() {
  std::string dir = env("HOME");
  return dir.empty() ? "/" : dir;
}

}  // namespace

std::optional<std::map<std::string, std::string>> iniSection(std::string_view text,
                                                             std::string_view section) {
  std::optional<std::map<std::string, std::string>> out;
  bool inside = false;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string trimmed = trim(line);
    if (trimmed.empty() || trimmed.front() == '#' || trimmed.front() == ';') continue;
    if (trimmed.front() == '[') {
      size_t close = trimmed.find(']');
      std::string name = trim(std::string_view(trimmed).substr(
          1, close == std::string::npos ? std::string::npos : close - 1));
      inside = close != std::string::npos && name == section;
      // A section may appear more than once; its keys add up, later ones win.
      if (inside && !out) out.emplace();
      continue;
    }
    // Indented lines belong to the setting above them (`s3 =` and its nested keys).
    if (!inside || line.front() == ' ' || line.front() == '\t') continue;
    size_t separator = trimmed.find_first_of("=:");
    if (separator == std::string::npos) continue;
    std::string key = toLower(trim(std::string_view(trimmed).substr(0, separator)));
    if (!key.empty()) (*out)[key] = trim(std::string_view(trimmed).substr(separator + 1));
  }
  return out;
}

Profile loadProfile() {
  std::string name = envFirst({"AWS_PROFILE", "AWS_DEFAULT_PROFILE"});
  Profile profile = loadProfile(name.empty() ? "default" : name);
  profile.named = !name.empty();
  return profile;
}

Profile loadProfile(const std::string& name) {
  Profile profile;
  profile.name = name;
  profile.named = true;
  profile.credentialsFile = env("AWS_SHARED_CREDENTIALS_FILE");
  if (profile.credentialsFile.empty()) profile.credentialsFile = home() + "/.aws/credentials";
  profile.configFile = env("AWS_CONFIG_FILE");
  if (profile.configFile.empty()) profile.configFile = home() + "/.aws/config";
  if (auto text = readTextFile(profile.configFile)) {
    std::string section = profile.name == "default" ? "default" : "profile " + profile.name;
    if (auto values = iniSection(*text, section)) {
      profile.found = true;
      profile.values = std::move(*values);
    }
  }
  if (auto text = readTextFile(profile.credentialsFile)) {
    if (auto values = iniSection(*text, profile.name)) {
      profile.found = true;
      for (auto& [key, value] : *values)
        profile.values[key] = std::move(value);
    }
  }
  return profile;
}

std::string configuredRegion() {
  std::string region = envFirst({"AWS_REGION", "AWS_DEFAULT_REGION"});
  return region.empty() ? loadProfile().value("region") : region;
}

}  // namespace storage::aws
