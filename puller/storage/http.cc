// Generic http(s) downloads: headers from the `<host>-headers` environment variable (a JSON
// object), redirects followed. The first GET asks for the first part as a range: a server that
// takes ranges says the file's size, and the rest of a large file then comes as parallel
// ranged GETs (fetch.h); one that takes none sends the whole file, as a plain GET would. An archive
// (by Content-Type or by file name) is unpacked; anything else is saved under the last segment of
// the URL path. An HTML page where a model file was expected (a repository's web page, a login
// page, a proxy's error page) fails the download instead of being saved as the model.

#include <charconv>
#include <fstream>
#include <optional>

#include "core/http/head.h"
#include "core/http/url.h"
#include "puller/storage/archive.h"
#include "puller/storage/fetch.h"
#include "puller/storage/providers.h"
#include "puller/storage/util.h"

namespace storage {

namespace {

// Whether a downloaded body is a web page: by Content-Type, or by its first bytes, because
// servers answer "application/octet-stream" or nothing at all for pages too. A file that is
// meant to be HTML (the URI names an .html or .htm file) is kept.
bool isUnexpectedHtml(const std::string& contentType, const fs::path& file,
                      const std::string& fileName) {
  std::string name = toLower(fileName);
  if (name.ends_with(".html") || name.ends_with(".htm")) return false;
  std::string type = toLower(contentType);
  if (type.starts_with("text/html") || type.starts_with("application/xhtml")) return true;
  std::ifstream in(file, std::ios::binary);
  std::string head(512, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (head.starts_with("\xEF\xBB\xBF")) head.erase(0, 3);
  head = toLower(trim(head));
  return head.starts_with("<!doctype html") || head.starts_with("<html") ||
         (head.starts_with("<?xml") && head.find("<html") != std::string::npos);
}

// The size in a Content-Range header ("bytes 0-99/1000"); nullopt when it is not given ("*").
std::optional<uint64_t> totalSize(const std::string& contentRange) {
  size_t slash = contentRange.rfind('/');
  if (slash == std::string::npos) return std::nullopt;
  uint64_t total = 0;
  const char* begin = contentRange.data() + slash + 1;
  const char* end = contentRange.data() + contentRange.size();
  auto [stop, ec] = std::from_chars(begin, end, total);
  if (ec != std::errc() || stop == begin || trim(std::string_view(stop, end - stop)) != "") {
    return std::nullopt;
  }
  return total;
}

// After a first part (206) was written: the rest of the file as ranged GETs. Each carries
// If-Range with the first answer's strong ETag, so a file replaced on the server meanwhile comes
// back whole and fails the download instead of mixing two versions.
Status fetchRest(const HttpRequest& request, const HttpResponse& firstPart,
                 const fs::path& destination, const fs::path& relative,
                 const std::atomic<bool>* cancel) {
  std::optional<uint64_t> total = totalSize(firstPart.contentRange);
  if (!total) {
    return Status::failure("the server answered a range without the file's size (Content-Range: " +
                           firstPart.contentRange + ")");
  }
  if (firstPart.bytes >= *total) return Status::success();
  SelectedObject object{relative.generic_string(), relative, *total, "", firstPart.bytes};
  ObjectSource source;
  source.request = [&](const SelectedObject&, const ByteRange* range, HttpRequest& part) {
    part = request;
    part.headers.push_back("Range: " + range->header());
    if (!firstPart.etag.empty() && !firstPart.etag.starts_with("W/")) {
      part.headers.push_back("If-Range: " + firstPart.etag);
    }
    return Status::success();
  };
  source.failure = describeFailure;
  return fetchObjects({object}, destination, source, cancel);
}

}  // namespace

Status downloadHttp(const std::string& uri, const fs::path& destination,
                    const DownloadOptions& options, Downloaded& out) {
  std::string problem;
  auto parts = core::splitHttpUrl(uri, &problem);
  if (!parts) return Status::failure(problem + " in the URI", true);
  std::string host(parts->host);  // as Go's url.Hostname(): no port, no IPv6 brackets
  std::string path(parts->target.substr(0, parts->target.find('?')));
  std::string fileName = path.substr(path.rfind('/') + 1);
  auto relative = safeRelativePath(fileName);
  if (!relative) return Status::failure("no file name in the URI path", true);

  HttpRequest request;
  request.url = uri.substr(0, uri.find('#'));
  request.cancel = options.cancel;
  request.followRedirects = true;
  applyDefaultTls(request);
  const std::string headersVariable = host + "-headers";
  std::vector<std::pair<std::string, std::string>> headers;
  if (Status status = hostHeaders(host, headers); !status.ok) return status;
  for (const auto& [name, value] : headers)
    request.headers.push_back(name + ": " + value);

  fs::path file;
  Status status = prepareFile(destination, *relative, file);
  if (!status.ok) return status;
  HttpRequest first = request;
  first.headers.push_back("Range: " + ByteRange{0, kPartSize - 1}.header());
  HttpResponse response = httpFetchToFile(first, file.string());
  // An empty file has no first byte to give.
  if (response.status == 416) response = httpFetchToFile(request, file.string());
  if (!response.error.empty()) return Status::failure(response.error);
  if (!response.ok()) {
    std::string text = "returned a " + std::to_string(response.status) + " response code";
    if (response.status == 401 || response.status == 403) {
      text += " (access denied; check the " + headersVariable + " variable)";
    } else if (response.status == 404) {
      text += " (not found)";
    }
    return Status::failure(text);
  }
  if (isUnexpectedHtml(response.contentType, file, fileName)) {
    std::error_code ec;
    fs::remove(file, ec);
    return Status::failure(
        "the server answered with an HTML page, not a model file (a git repository needs a URI "
        "ending in .git; a page that needs a login needs the " +
        headersVariable + " variable)");
  }
  if (response.status == 206) {
    status = fetchRest(request, response, destination, *relative, options.cancel);
    if (!status.ok) return status;
  }
  out.files.push_back(*relative);
  out.archiveByContentType = isArchiveContentType(response.contentType);
  return Status::success();
}

}  // namespace storage
