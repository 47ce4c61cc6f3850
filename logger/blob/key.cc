#include "logger/blob/key.h"

#include <random>
#include <vector>

#include "logger/blob/record.h"

namespace logger::blob {
namespace {

constexpr size_t kMaxDirectoryBytes = 512;
constexpr size_t kMaxIdBytes = 200;

bool isKeySafe(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '~' || c == '-';
}

bool allKeySafe(std::string_view text) {
  for (char c : text) {
    if (!isKeySafe(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// %-encodes every byte that is not key-safe, up to `limit` bytes of output (never cutting an
// escape in two). Injective: '%' itself is encoded.
std::string encodeSegment(std::string_view text, size_t limit) {
  static constexpr char kUpperHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    const size_t width = isKeySafe(c) ? 1 : 3;
    if (out.size() + width > limit) break;
    if (width == 1) {
      out += ch;
    } else {
      out += '%';
      out += kUpperHex[c >> 4];
      out += kUpperHex[c & 15];
    }
  }
  return out;
}

}  // namespace

bool looksLikeBlobUrl(std::string_view url) {
  return url.starts_with("s3") || url.starts_with("gs") || url.starts_with("abfs");
}

bool parseBlobUrl(std::string_view url, BlobLocation& out, std::string& error) {
  out = BlobLocation{};
  if (url.starts_with("s3://")) {
    out.provider = Provider::S3;
  } else if (url.starts_with("gs://")) {
    out.provider = Provider::Gcs;
  } else if (url.starts_with("abfs://")) {
    out.provider = Provider::Azure;
  } else {
    const size_t colon = url.find(':');
    error = "unsupported blob URL scheme \"" +
            std::string(url.substr(0, colon == std::string_view::npos ? url.size() : colon)) +
            "\": expected s3://, gs:// or abfs://";
    return false;
  }
  GoUrl parsed;
  std::string user;
  if (!GoUrl::parse(url, parsed, error, &user)) {
    error = "malformed blob URL: " + error;
    return false;
  }
  if (parsed.hasUser) {
    out.bucket = user;
    out.account = parsed.host;
  } else {
    out.bucket = parsed.host;
  }
  if (out.bucket.empty()) {
    error = "no bucket specified in url";
    return false;
  }
  if (!allKeySafe(out.bucket) || out.bucket.find('~') != std::string::npos) {
    error = "invalid bucket name \"" + out.bucket + "\" in url";
    return false;
  }
  out.prefix = parsed.path.starts_with('/') ? parsed.path.substr(1) : parsed.path;
  return true;
}

std::string goPathClean(std::string_view path) {
  if (path.empty()) return ".";
  const bool rooted = path[0] == '/';
  std::vector<std::string_view> parts;
  size_t dotdots = 0;  // leading ".." elements of an unrooted path, which cannot be removed
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view part = path.substr(start, end - start);
    start = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.size() > dotdots) {
        parts.pop_back();
      } else if (!rooted) {
        parts.push_back(part);
        ++dotdots;
      }
    } else {
      parts.push_back(part);
    }
  }
  std::string out = rooted ? "/" : "";
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += '/';
    out += parts[i];
  }
  return out.empty() ? "." : out;
}

std::string goPathJoin(std::initializer_list<std::string_view> elements) {
  std::string joined;
  for (std::string_view element : elements) {
    if (element.empty()) continue;
    if (!joined.empty()) joined += '/';
    joined += element;
  }
  return joined.empty() ? "" : goPathClean(joined);
}

bool objectDirectory(std::string_view prefix, std::string_view nameSpace,
                     std::string_view inferenceService, std::string_view component,
                     std::string_view storePath, std::string& directory, std::string& error) {
  directory = goPathJoin({prefix, nameSpace, inferenceService, component, storePath});
  if (directory.starts_with('/')) directory.erase(0, 1);
  if (directory == ".") directory.clear();
  if (directory == ".." || directory.starts_with("../")) {
    error = "the object key directory \"" + directory + "\" is above the bucket's root";
    return false;
  }
  if (directory.size() > kMaxDirectoryBytes) {
    error =
        "the object key directory is longer than " + std::to_string(kMaxDirectoryBytes) + " bytes";
    return false;
  }
  return true;
}

ObjectKeys::ObjectKeys(std::string directory, uint64_t processToken)
    : directory_(std::move(directory)) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4)
    token_ += kHex[(processToken >> shift) & 15];
}

uint64_t ObjectKeys::randomToken() {
  std::random_device device;
  return (uint64_t{device()} << 32) ^ device();
}

std::string ObjectKeys::key(std::string_view id, IdOrigin origin, std::string_view reqType,
                            std::string_view extension) {
  const size_t dot = reqType.rfind('.');
  const std::string suffix =
      encodeSegment(dot == std::string_view::npos ? reqType : reqType.substr(dot + 1), 64);
  const std::string ext = encodeSegment(extension, 64);
  std::string key = directory_;
  if (!key.empty()) key += '/';
  if (origin == IdOrigin::Generated && !id.empty() && id.size() <= kMaxIdBytes && allKeySafe(id)) {
    key.append(id);
  } else {
    key += encodeSegment(id, kMaxIdBytes);
    key += '-';
    key += token_;
    key += '-';
    key += std::to_string(sequence_.fetch_add(1, std::memory_order_relaxed) + 1);
  }
  key += '-';
  key += suffix;
  key += '.';
  key += ext;
  return key;
}

}  // namespace logger::blob
