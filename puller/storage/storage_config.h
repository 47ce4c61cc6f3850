// STORAGE_CONFIG / STORAGE_OVERRIDE_CONFIG: the storageSpec secret (`storage-config`, as
// OpenDataHub/RHOAI data connections generate it) that the KServe webhook hands the initializer
// as JSON, and the `<scheme-placeholder>://` URIs that go with it.
#pragma once

#include <map>
#include <string>

#include "puller/storage/storage.h"

namespace storage {

struct StorageSpec {
  bool present = false;  // STORAGE_CONFIG or STORAGE_OVERRIDE_CONFIG was set
  std::string type;      // "s3", "hdfs", "webhdfs"
  std::string bucket;
  // For type s3: the environment variables the keys stand for (AWS_ENDPOINT_URL,
  // AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_CA_BUNDLE, S3_VERIFY_SSL,
  // awsAnonymousCredential), only for the keys present. They win over the real environment.
  std::map<std::string, std::string> s3Settings;
  // For types hdfs and webhdfs: every other key, as the files of the HDFS secret would hold it.
  std::map<std::string, std::string> hdfsSettings;
};

// Both variables parsed and merged (the override's keys win). JSON strings are taken as they are;
// booleans and numbers as their JSON text. A variable that is not a JSON object fails.
Status storageSpecFromEnv(StorageSpec& spec);

// `<scheme-placeholder>://path` → `s3://<bucket>/path` (type s3) or `hdfs://path`, as the
// webhook does for storageSpec; any other URI is returned unchanged.
Status rewritePlaceholderUri(const std::string& uri, const StorageSpec& spec, std::string& out);

// The CA bundle ConfigMap's file when CA_BUNDLE_CONFIGMAP_NAME is set (the webhook mounts it):
// ${CA_BUNDLE_VOLUME_MOUNT_POINT:-/etc/ssl/custom-certs}/cabundle.crt; "" otherwise.
std::string caBundleConfigMapFile();

// Fails (permanently) when a CA bundle that is asked for cannot be read: the ConfigMap's file, and
// `caFile` unless empty. `what` names the variable for the message.
Status checkCaBundles(const std::string& caFile = "", const char* what = "");

}  // namespace storage
