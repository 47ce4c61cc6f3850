#include "router/sniff.h"

#include <array>
#include <cstddef>

namespace router {

namespace {

constexpr size_t kSniffLength = 512;

bool isWhitespace(unsigned char c) {
  return c == '\t' || c == '\n' || c == '\x0c' || c == '\r' || c == ' ';
}

// Bytes that do not appear in text (the WHATWG MIME sniffing "binary data byte").
bool isBinary(unsigned char c) {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1A) || (c >= 0x1C && c <= 0x1F);
}

char upper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

// An HTML tag opening the document (after white space), in any case, ended by space or '>'.
bool htmlSignature(std::string_view data, std::string_view tag) {
  if (data.size() < tag.size() + 1) return false;
  for (size_t i = 0; i < tag.size(); ++i) {
    if (upper(data[i]) != tag[i]) return false;
  }
  char end = data[tag.size()];
  return end == ' ' || end == '>';
}

struct Masked {
  std::string_view mask;
  std::string_view pattern;
  std::string_view type;
};

bool maskedMatch(std::string_view data, const Masked& signature) {
  if (data.size() < signature.pattern.size()) return false;
  for (size_t i = 0; i < signature.pattern.size(); ++i) {
    if ((data[i] & signature.mask[i]) != signature.pattern[i]) return false;
  }
  return true;
}

struct Exact {
  std::string_view prefix;
  std::string_view type;
};

}  // namespace

std::string_view detectContentType(std::string_view body) {
  using namespace std::string_view_literals;
  std::string_view data = body.substr(0, kSniffLength);
  size_t firstNonSpace = 0;
  while (firstNonSpace < data.size() &&
         isWhitespace(static_cast<unsigned char>(data[firstNonSpace])))
    ++firstNonSpace;
  std::string_view text = data.substr(firstNonSpace);

  static constexpr std::array<std::string_view, 17> kHtmlTags = {"<!DOCTYPE HTML",
                                                                 "<HTML",
                                                                 "<HEAD",
                                                                 "<SCRIPT",
                                                                 "<IFRAME",
                                                                 "<H1",
                                                                 "<DIV",
                                                                 "<FONT",
                                                                 "<TABLE",
                                                                 "<A",
                                                                 "<STYLE",
                                                                 "<TITLE",
                                                                 "<B",
                                                                 "<BODY",
                                                                 "<BR",
                                                                 "<P",
                                                                 "<!--"};
  for (std::string_view tag : kHtmlTags) {
    if (htmlSignature(text, tag)) return "text/html; charset=utf-8";
  }
  if (text.starts_with("<?xml")) return "text/xml; charset=utf-8";

  static constexpr std::array<Masked, 4> kMasked = {{
      {"\xFF\xFF\x00\x00"sv, "\xFE\xFF\x00\x00"sv, "text/plain; charset=utf-16be"},
      {"\xFF\xFF\x00\x00"sv, "\xFF\xFE\x00\x00"sv, "text/plain; charset=utf-16le"},
      {"\xFF\xFF\xFF\x00"sv, "\xEF\xBB\xBF\x00"sv, "text/plain; charset=utf-8"},
      {"\xFF\xFF\xFF\xFF\x00\x00\x00\x00\xFF\xFF\xFF\xFF\xFF\xFF"sv, "RIFF\x00\x00\x00\x00WEBPVP"sv,
       "image/webp"},
  }};
  static constexpr std::array<Exact, 20> kExact = {{
      {"%PDF-", "application/pdf"},
      {"%!PS-Adobe-", "application/postscript"},
      {"\x00\x00\x01\x00"sv, "image/x-icon"},
      {"\x00\x00\x02\x00"sv, "image/x-icon"},
      {"BM", "image/bmp"},
      {"GIF87a", "image/gif"},
      {"GIF89a", "image/gif"},
      {"\x89PNG\x0D\x0A\x1A\x0A", "image/png"},
      {"\xFF\xD8\xFF", "image/jpeg"},
      {"OggS\x00"sv, "application/ogg"},
      {"MThd\x00\x00\x00\x06"sv, "audio/midi"},
      {"ID3", "audio/mpeg"},
      {"\x1A\x45\xDF\xA3", "video/webm"},
      {"wOFF", "font/woff"},
      {"wOF2", "font/woff2"},
      {"\x1F\x8B\x08", "application/x-gzip"},
      {"PK\x03\x04", "application/zip"},
      {"Rar!\x1A\x07\x00"sv, "application/x-rar-compressed"},
      {"Rar!\x1A\x07\x01\x00"sv, "application/x-rar-compressed"},
      {"\x00\x61\x73\x6D"sv, "application/wasm"},
  }};
  for (size_t i = 0; i < 3; ++i) {
    if (maskedMatch(data, kMasked[i])) return kMasked[i].type;
  }
  for (const Exact& signature : kExact) {
    if (data.starts_with(signature.prefix)) return signature.type;
  }
  if (maskedMatch(data, kMasked[3])) return kMasked[3].type;
  for (char c : text) {
    if (isBinary(static_cast<unsigned char>(c))) return "application/octet-stream";
  }
  return "text/plain; charset=utf-8";
}

}  // namespace router
