#include "puller/storage/sigv4.h"

#include <algorithm>

#include "puller/storage/util.h"

namespace storage::sigv4 {
namespace {

// Header values are trimmed and inner runs of spaces collapse to one, as the spec requires.
std::string canonicalHeaderValue(const std::string& value) {
  std::string trimmed = trim(value);
  std::string out;
  bool space = false;
  for (char c : trimmed) {
    if (c == ' ' || c == '\t') {
      space = true;
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

std::string signedHeaders(const Request& request) {
  std::string out;
  for (const auto& [name, value] : request.headers) {
    if (!out.empty()) out.push_back(';');
    out += name;
  }
  return out;
}

}  // namespace

std::string canonicalQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    encoded.emplace_back(percentEncode(name, false), percentEncode(value, false));
  }
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    out += name + "=" + value;
  }
  return out;
}

std::string canonicalRequest(const Request& request) {
  std::string out =
      request.method + "\n" + request.canonicalUri + "\n" + canonicalQuery(request.query) + "\n";
  for (const auto& [name, value] : request.headers) {
    out += name + ":" + canonicalHeaderValue(value) + "\n";
  }
  out += "\n" + signedHeaders(request) + "\n" + request.payloadHash;
  return out;
}

std::string amzDateNow() {
  return utcNow("%Y%m%dT%H%M%SZ");
}

std::string authorization(const Request& request, const Credentials& credentials,
                          const std::string& region, const std::string& service,
                          const std::string& amzDate) {
  std::string date = amzDate.substr(0, 8);
  std::string scope = date + "/" + region + "/" + service + "/aws4_request";
  std::string stringToSign =
      "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + sha256Hex(canonicalRequest(request));
  std::string key = hmacSha256("AWS4" + credentials.secretAccessKey, date);
  key = hmacSha256(key, region);
  key = hmacSha256(key, service);
  key = hmacSha256(key, "aws4_request");
  std::string signature = hex(hmacSha256(key, stringToSign));
  return "AWS4-HMAC-SHA256 Credential=" + credentials.accessKeyId + "/" + scope +
         ", SignedHeaders=" + signedHeaders(request) + ", Signature=" + signature;
}

}  // namespace storage::sigv4
