// Small helpers shared by the storage providers: environment, encodings, hashes and signatures
// (OpenSSL), a minimal XML reader for S3 and Azure listings, and safe relative paths.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace storage {

// The value of an environment variable ("" when unset).
std::string env(const char* name);
// The first of several variables that is set and non-empty.
std::string envFirst(std::initializer_list<const char*> names);
// "1", "true", "yes" (any case) → true; "0", "false", "no" → false; anything else → fallback.
bool envBool(const char* name, bool fallback);
// A number of seconds (fractions allowed) from the environment; `fallback` when unset, and, with
// a warning naming the variable, when it is not a finite number, negative, or zero where
// `allowZero` is false.
std::chrono::milliseconds envSeconds(const char* name, std::chrono::milliseconds fallback,
                                     bool allowZero);

// The current time in UTC, formatted as strftime(3) does, in the C locale (HTTP dates).
std::string utcNow(const char* format);

std::string toLower(std::string_view text);
std::string trim(std::string_view text);

// RFC 3986 percent-encoding of everything but unreserved characters; '/' kept when asked.
std::string percentEncode(std::string_view text, bool keepSlash);
std::string formEncode(const std::vector<std::pair<std::string, std::string>>& fields);

std::string hex(std::string_view bytes);
std::string sha256(std::string_view data);     // raw digest
std::string sha256Hex(std::string_view data);  // lower-case hex digest
// A file's SHA-256 as lower-case hex, read a MiB at a time; nullopt when it cannot be read.
std::optional<std::string> sha256FileHex(const std::filesystem::path& path);
std::string hmacSha256(std::string_view key, std::string_view data);  // raw MAC
std::string base64Encode(std::string_view bytes);
std::optional<std::string> base64Decode(std::string_view text);
std::string base64UrlEncode(std::string_view bytes);  // no padding (JWT)
// RSASSA-PKCS1-v1_5 with SHA-256 using a PEM private key; nullopt when the key is unusable.
std::optional<std::string> rs256Sign(const std::string& pemKey, std::string_view data);

// The text of every <tag>...</tag> element in document order, entities decoded. Enough for the
// flat listings S3 and Azure return; not a general XML parser.
std::vector<std::string> xmlElements(std::string_view xml, std::string_view tag);
std::string xmlFirst(std::string_view xml, std::string_view tag);

// A file's whole content; nullopt when it cannot be opened or read (an empty file reads as "").
std::optional<std::string> readTextFile(const std::string& path);

// The entries of a folder. Never throws: a folder that cannot be read (or read to the end) sets
// `ec` and returns what was read before.
std::vector<std::filesystem::directory_entry> listFolder(const std::filesystem::path& folder,
                                                         std::error_code& ec);

// A relative path that stays inside its base: no absolute path, no "..", no empty result.
std::optional<std::filesystem::path> safeRelativePath(std::string_view relative);

}  // namespace storage
