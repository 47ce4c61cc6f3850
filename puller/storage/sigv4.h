// AWS Signature Version 4 for S3 requests (header signing).
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace storage::sigv4 {

struct Credentials {
  std::string accessKeyId;
  std::string secretAccessKey;
  std::string sessionToken;
};

struct Request {
  std::string method;
  std::string canonicalUri;  // the path exactly as sent, already percent-encoded
  std::vector<std::pair<std::string, std::string>> query;  // raw (not encoded) names and values
  std::map<std::string, std::string> headers;  // lower-case names; every one of them is signed
  std::string payloadHash;                     // hex SHA-256 of the body, or UNSIGNED-PAYLOAD
};

// The query string in canonical form (sorted, RFC 3986 encoded); also what the request sends.
std::string canonicalQuery(const std::vector<std::pair<std::string, std::string>>& query);
std::string canonicalRequest(const Request& request);
// The current time as SigV4 writes it, "YYYYMMDDTHHMMSSZ" (UTC).
std::string amzDateNow();
// The Authorization header value. `amzDate` is "YYYYMMDDTHHMMSSZ" (also in the x-amz-date header).
std::string authorization(const Request& request, const Credentials& credentials,
                          const std::string& region, const std::string& service,
                          const std::string& amzDate);

}  // namespace storage::sigv4
