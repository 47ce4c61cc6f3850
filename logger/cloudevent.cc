#include "logger/cloudevent.h"

#include <sys/random.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <ctime>

#include "core/util/encoding.h"
#include "core/util/recycle.h"

namespace logger {

using namespace std::string_view_literals;

namespace {

constexpr size_t kUuidLength = 36;

// Random bytes from the kernel, fetched a few hundred at a time: one getrandom per 32 UUIDs
// instead of one each.
class RandomPool {
 public:
  void fill(unsigned char* out, size_t length) {
    while (length > 0) {
      if (next_ == bytes_.size()) refill();
      size_t n = std::min(length, bytes_.size() - next_);
      std::memcpy(out, bytes_.data() + next_, n);
      next_ += n;
      out += n;
      length -= n;
    }
  }

 private:
  void refill() {
    size_t filled = 0;
    while (filled < bytes_.size()) {
      ssize_t n = getrandom(bytes_.data() + filled, bytes_.size() - filled, 0);
      // getrandom only fails before the kernel's pool is initialised or on EINTR; retrying is
      // the only sensible answer for an id generator.
      if (n > 0) filled += static_cast<size_t>(n);
    }
    next_ = 0;
  }

  std::array<unsigned char, 512> bytes_{};
  size_t next_ = bytes_.size();
};

// Appends one "Name: value\r\n" line; "Name:\r\n" when the value is empty.
void appendLine(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += value.empty() ? ":"sv : ": "sv;
  out += value;
  out += "\r\n"sv;
}

}  // namespace

EventFormat::EventFormat(const EventAttributes& attributes) {
  for (EventKind kind : {EventKind::Request, EventKind::Response}) {
    std::string& lines = constant_[static_cast<size_t>(kind)];
    lines += "Ce-Specversion: 1.0\r\n"sv;
    appendLine(lines, "Ce-Source", attributes.source);
    appendLine(lines, "Ce-Type", kind == EventKind::Request ? kRequestType : kResponseType);
    appendLine(lines, "Ce-Inferenceservicename", attributes.inferenceService);
    appendLine(lines, "Ce-Namespace", attributes.namespace_);
    appendLine(lines, "Ce-Component", attributes.component);
    appendLine(lines, "Ce-Endpoint", attributes.endpoint);
    if (!attributes.annotationsJson.empty()) {
      appendLine(lines, "Ce-Annotations", attributes.annotationsJson);
    }
  }
}

void EventFormat::appendHeaders(const Record& record, std::string& out) const {
  out += constant_[static_cast<size_t>(record.kind)];
  appendLine(out, "Ce-Id", record.id);
  out += "Ce-Time: "sv;
  appendRfc3339Nano(out, record.time, dates_);
  out += "\r\nCe-Recordedtime: "sv;
  appendRfc3339Nano(out, record.recorded, dates_);
  out += "\r\n"sv;
  if (isCloudEventsMediaType(record.contentType)) {
    appendLine(out, "Content-Type", kNeutralContentType);
    out += "Ce-Originalcontenttype: "sv;
    appendPercentEncoded(out, record.contentType);
    out += "\r\n"sv;
  } else if (!record.contentType.empty()) {
    appendLine(out, "Content-Type", record.contentType);
  }
  appendLine(out, "Ce-Metadata", record.metadataJson);
  if (record.statusCode) {
    char digits[16];
    auto [end, error] = std::to_chars(digits, digits + sizeof digits, *record.statusCode);
    appendLine(out, "Ce-Statuscode", std::string_view(digits, static_cast<size_t>(end - digits)));
  }
}

core::Headers EventFormat::headers(const Record& record) const {
  std::string lines;
  appendHeaders(record, lines);
  core::Headers headers;
  std::string_view rest = lines;
  while (!rest.empty()) {
    size_t end = rest.find("\r\n");
    std::string_view line = rest.substr(0, end);
    size_t colon = line.find(':');
    headers.push_back(
        {std::string(line.substr(0, colon)), std::string(core::trimSpace(line.substr(colon + 1)))});
    rest.remove_prefix(end + 2);
  }
  return headers;
}

bool isCloudEventsMediaType(std::string_view contentType) {
  static constexpr std::string_view kPrefix = "application/cloudevents";
  std::string_view type = core::trimSpace(contentType);
  return type.size() >= kPrefix.size() && core::iequals(type.substr(0, kPrefix.size()), kPrefix);
}

void appendPercentEncoded(std::string& out, std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : value) {
    auto byte = static_cast<unsigned char>(c);
    if (byte > ' ' && byte < 0x7f && byte != '"' && byte != '%') {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    }
  }
}

const std::string& DateCache::of(std::time_t seconds) {
  if (seconds != second_) {
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    std::array<char, 32> buffer{};
    size_t n = std::strftime(buffer.data(), buffer.size(), "%Y-%m-%dT%H:%M:%S", &utc);
    text_.assign(buffer.data(), n);
    second_ = seconds;
  }
  return text_;
}

void appendRfc3339Nano(std::string& out, std::chrono::system_clock::time_point time,
                       DateCache& dates) {
  using namespace std::chrono;
  auto sinceEpoch = duration_cast<nanoseconds>(time.time_since_epoch());
  auto seconds = floor<std::chrono::seconds>(sinceEpoch);
  auto nanos = static_cast<uint32_t>((sinceEpoch - seconds).count());
  const std::string& date = dates.of(static_cast<std::time_t>(seconds.count()));
  // The date (at most 31 characters, see DateCache::of), '.', nine digits and 'Z', appended
  // at once.
  std::array<char, 48> text{};
  std::memcpy(text.data(), date.data(), date.size());
  size_t length = date.size();
  if (nanos != 0) {
    text[length] = '.';
    for (size_t i = length + 9; i > length; --i) {
      text[i] = static_cast<char>('0' + nanos % 10);
      nanos /= 10;
    }
    length += 10;
    while (text[length - 1] == '0')
      --length;
  }
  text[length++] = 'Z';
  out.append(text.data(), length);
}

Record::Record(const Record& other)
    : kind(other.kind), time(other.time), recorded(other.recorded), statusCode(other.statusCode) {
  core::assignReusing(id, other.id);
  core::assignReusing(contentType, other.contentType);
  core::assignReusing(metadataJson, other.metadataJson);
}

Record::~Record() {
  core::recycleString(id);
  core::recycleString(contentType);
  core::recycleString(metadataJson);
}

void appendRandomUuid(std::string& out) {
  thread_local RandomPool pool;
  std::array<unsigned char, 16> bytes{};
  pool.fill(bytes.data(), bytes.size());
  core::appendUuidV4(out, bytes);
}

std::string jsonString(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  core::appendGoJsonString(out, text);
  return out;
}

std::string metadataJson(const Metadata& metadata) {
  std::string out = "{";
  for (const auto& [name, values] : metadata) {
    if (out.size() > 1) out += ',';
    out += jsonString(name);
    out += ":["sv;
    for (size_t i = 0; i < values.size(); ++i) {
      if (i > 0) out += ',';
      out += jsonString(values[i]);
    }
    out += ']';
  }
  out += '}';
  return out;
}

std::string annotationsJson(const std::vector<std::string>& items) {
  std::map<std::string, std::string> annotations;
  for (const auto& item : items) {
    size_t equals = item.find('=');
    if (equals == std::string::npos) continue;
    annotations[item.substr(0, equals)] = item.substr(equals + 1);
  }
  if (annotations.empty()) return "";
  std::string out = "{";
  for (const auto& [key, value] : annotations) {
    if (out.size() > 1) out += ',';
    out += jsonString(key);
    out += ':';
    out += jsonString(value);
  }
  out += '}';
  return out;
}

Metadata collectMetadata(const core::Headers& requestHeaders,
                         const std::vector<std::string>& metadataHeaders) {
  Metadata metadata;
  for (const auto& header : requestHeaders) {
    for (const auto& wanted : metadataHeaders) {
      if (core::iequals(header.name, wanted)) {
        metadata[core::goCanonicalHeaderName(header.name)].push_back(header.value);
        break;
      }
    }
  }
  return metadata;
}

bool assignEventId(std::string& id, const core::Headers& requestHeaders) {
  const std::string* incoming = core::findHeader(requestHeaders, "Ce-Id");
  std::string_view given = incoming == nullptr ? std::string_view() : core::trimSpace(*incoming);
  if (!given.empty()) {
    core::assignReusing(id, given);
    return true;
  }
  id.clear();
  if (id.capacity() < kUuidLength) core::reuseString(id, kUuidLength);
  appendRandomUuid(id);
  return false;
}

}  // namespace logger
