// storage-initializer SRC DEST [SRC DEST ...]: downloads each source into its destination with
// the puller's storage library, in order, as the KServe storage-initializer image does.
// Exit 0 when every pair succeeded; 1 with one line naming the URI and the cause otherwise;
// 1 with usage text for a wrong argument count (as upstream's initializer-entrypoint).
#include <spdlog/spdlog.h>

#include <cstdio>
#include <string>
#include <vector>

#include "puller/storage/confidential.h"
#include "puller/storage/storage.h"

int main(int argc, char** argv) {
  if (argc < 3 || (argc - 1) % 2 != 0) {
    std::fprintf(
        stderr,
        "usage: storage-initializer SRC_URI DEST_PATH [SRC_URI DEST_PATH ...]\n"
        "Downloads each SRC_URI (s3://, gs://, https://<account>.blob.core.windows.net/,"
        " https://<account>.file.core.windows.net/, git://, http(s)://...repo.git[@ref],"
        " http(s)://, hdfs://, webhdfs://, hf://, modelscope://, oci://, oci+fetch://, pvc://,"
        " file:// or a local path) into DEST_PATH. STORAGE_ALLOW_PATTERNS and"
        " STORAGE_IGNORE_PATTERNS (JSON lists of fnmatch patterns) select the files;"
        " STORAGE_PROGRESS_INTERVAL (seconds, default 10, 0 off) paces progress lines;"
        " CONFIDENTIAL_ENABLED=true decrypts the JWE files downloaded with the key the"
        " Confidential Data Hub releases for CONFIDENTIAL_RESOURCE_ID.\n");
    return 1;
  }
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l storage-initializer: %v");
  if (storage::confidentialEnabled()) {
    storage::Status status = storage::checkConfidentialSettings();
    if (!status.ok) {
      std::fprintf(stderr, "storage-initializer: %s\n", status.message.c_str());
      return 1;
    }
  }
  std::vector<std::string> destinations;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string source = argv[i];
    std::string destination = argv[i + 1];
    spdlog::info("downloading {} to {}", storage::redactUri(source), destination);
    storage::DownloadOptions options;
    options.patterns = storage::patternsFromEnvironment();
    storage::Status status = storage::download(source, destination, options);
    if (!status.ok) {
      std::fprintf(stderr, "storage-initializer: failed to download %s: %s\n",
                   storage::redactUri(source).c_str(), status.message.c_str());
      return 1;
    }
    spdlog::info("downloaded {} to {}", storage::redactUri(source), destination);
    destinations.push_back(destination);
  }
  if (storage::confidentialEnabled()) {
    storage::Status status = storage::decryptConfidential(destinations);
    if (!status.ok) {
      std::fprintf(stderr, "storage-initializer: failed to decrypt: %s\n", status.message.c_str());
      return 1;
    }
  }
  return 0;
}
