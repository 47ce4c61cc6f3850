#include "core/chain/filter.h"

namespace core {

void Exchange::replyWith(int status, std::string_view contentType, std::string body,
                         Headers extraHeaders) {
  ResponseHead head;
  head.status = status;
  head.headers = std::move(extraHeaders);
  if (!contentType.empty()) head.headers.push_back({"Content-Type", std::string(contentType)});
  reply(std::move(head), std::move(body));
}

void Exchange::replyError(int status, std::string_view message) {
  std::string body(message);
  body += '\n';
  replyWith(status, "text/plain; charset=utf-8", std::move(body),
            {{"X-Content-Type-Options", "nosniff"}});
}

}  // namespace core
