#include "puller/storage/storage_config.h"

#include <nlohmann/json.hpp>

#include <fstream>

#include "puller/storage/util.h"

namespace storage {
namespace {

constexpr std::string_view kPlaceholder = "<scheme-placeholder>://";

Status mergeJson(const char* name, std::map<std::string, std::string>& into) {
  std::string text = env(name);
  if (trim(text).empty()) return Status::success();
  auto document = nlohmann::json::parse(text, nullptr, false);
  if (!document.is_object()) {
    // The content is a secret: say what is wrong, never what it holds.
    return Status::failure(std::string(name) + " is not a JSON object", true);
  }
  for (const auto& [key, value] : document.items()) {
    if (value.is_null()) continue;
    into[key] = value.is_string() ? value.get<std::string>() : value.dump();
  }
  return Status::success();
}

}  // namespace

Status storageSpecFromEnv(StorageSpec& spec) {
  spec = {};
  std::map<std::string, std::string> merged;
  for (const char* name : {"STORAGE_CONFIG", "STORAGE_OVERRIDE_CONFIG"}) {
    Status status = mergeJson(name, merged);
    if (!status.ok) return status;
  }
  if (merged.empty()) return Status::success();
  spec.present = true;
  spec.type = toLower(merged["type"]);
  spec.bucket = merged["bucket"];
  if (spec.type == "s3") {
    static const std::pair<const char*, const char*> kKeys[] = {
        {"endpoint_url", "AWS_ENDPOINT_URL"},
        {"access_key_id", "AWS_ACCESS_KEY_ID"},
        {"secret_access_key", "AWS_SECRET_ACCESS_KEY"},
        {"region", "AWS_DEFAULT_REGION"},
        {"ca_bundle", "AWS_CA_BUNDLE"},
        {"verify_ssl", "S3_VERIFY_SSL"},
        {"anonymous", "awsAnonymousCredential"}};
    for (const auto& [key, variable] : kKeys) {
      auto it = merged.find(key);
      if (it != merged.end()) spec.s3Settings[variable] = it->second;
    }
  } else if (spec.type == "hdfs" || spec.type == "webhdfs") {
    spec.hdfsSettings = std::move(merged);
    spec.hdfsSettings.erase("type");
  }
  return Status::success();
}

Status rewritePlaceholderUri(const std::string& uri, const StorageSpec& spec, std::string& out) {
  out = uri;
  if (!uri.starts_with(kPlaceholder)) return Status::success();
  std::string path = uri.substr(kPlaceholder.size());
  if (!spec.present) {
    return Status::failure("a <scheme-placeholder> URI needs STORAGE_CONFIG", true);
  }
  if (spec.type == "s3") {
    if (spec.bucket.empty()) {
      return Status::failure("a <scheme-placeholder> URI needs a bucket in STORAGE_CONFIG", true);
    }
    out = "s3://" + spec.bucket + "/" + path;
  } else if (spec.type == "hdfs" || spec.type == "webhdfs") {
    out = "hdfs://" + path;
  } else {
    return Status::failure(
        "STORAGE_CONFIG type \"" + spec.type + "\" is not one of s3, hdfs, webhdfs", true);
  }
  return Status::success();
}

std::string caBundleConfigMapFile() {
  if (env("CA_BUNDLE_CONFIGMAP_NAME").empty()) return "";
  std::string folder = env("CA_BUNDLE_VOLUME_MOUNT_POINT");
  if (folder.empty()) folder = "/etc/ssl/custom-certs";
  while (folder.size() > 1 && folder.back() == '/')
    folder.pop_back();
  return folder + "/cabundle.crt";
}

Status checkCaBundles(const std::string& caFile, const char* what) {
  if (std::string file = caBundleConfigMapFile(); !file.empty() && !std::ifstream(file)) {
    return Status::failure("cannot read the CA bundle " + file + " (CA_BUNDLE_CONFIGMAP_NAME=" +
                               env("CA_BUNDLE_CONFIGMAP_NAME") + ")",
                           true);
  }
  if (!caFile.empty() && !std::ifstream(caFile)) {
    return Status::failure("cannot read the CA bundle " + caFile + " (" + what + ")", true);
  }
  return Status::success();
}

}  // namespace storage
