#include "agent/marshaller.h"

#include "logger/blob/marshaller.h"

namespace agent {

core::Action MarshallerFilter::onRequestHeaders(const core::ExchangePtr&) {
  return core::Action::Buffer;
}

core::Action MarshallerFilter::onRequestBody(const core::ExchangePtr& exchange, std::string& body) {
  logger::blob::MarshalAnswer answer =
      logger::blob::answerMarshalRequest(format_, exchange->request().method, body);
  core::ResponseHead head;
  head.status = answer.status;
  for (auto& [name, value] : answer.headers)
    head.headers.push_back({std::move(name), std::move(value)});
  exchange->reply(std::move(head), std::move(answer.body));
  return core::Action::Handled;
}

core::TerminalStreamPtr NoTerminal::start(core::Downstream& exchange) {
  exchange.replyError(500, "no handler");
  return nullptr;
}

}  // namespace agent
