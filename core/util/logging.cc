#include "core/util/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>

namespace core {

namespace {

// The message as the inside of a JSON string, so that a quote, a backslash or a control
// character in it (a URL, an error text) leaves every line valid JSON.
class JsonMessage final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&,
              spdlog::memory_buf_t& out) override {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : std::string_view(message.payload.data(), message.payload.size())) {
      auto byte = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out.push_back('\\');
        out.push_back(c);
      } else if (c == '\n') {
        out.append(std::string_view("\\n"));
      } else if (c == '\r') {
        out.append(std::string_view("\\r"));
      } else if (c == '\t') {
        out.append(std::string_view("\\t"));
      } else if (byte < 0x20) {
        const char escape[] = {'\\', 'u', '0', '0', kHex[byte >> 4], kHex[byte & 15]};
        out.append(escape, escape + sizeof escape);
      } else {
        out.push_back(c);
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessage>();
  }
};

// The level as Go's zap (upstream's logger) names it: spdlog's "warning" is "warn" there, so
// a log pipeline that selects `level == "warn"` for upstream's images selects ours too.
class GoLevel final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm&,
              spdlog::memory_buf_t& out) override {
    const auto name = message.level == spdlog::level::warn
                          ? spdlog::string_view_t("warn")
                          : spdlog::level::to_string_view(message.level);
    out.append(name.data(), name.data() + name.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<GoLevel>();
  }
};

}  // namespace

void configureJsonLogging(const std::string& name, const std::string& level) {
  // Several loops may log at once: the multi-threaded sink.
  auto logger = spdlog::stderr_logger_mt(name);
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<JsonMessage>('*').add_flag<GoLevel>('G').set_pattern(
      R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%G","msg":"%*"})");
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace core
