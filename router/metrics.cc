#include "router/metrics.h"

#include <cstdio>

namespace router {

namespace {

// A label value as the exposition format escapes it.
std::string labelValue(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// `labels` ends in a comma or is empty; the exposition wants neither a trailing comma nor {}.
void sample(std::string& out, const std::string& name, const std::string& labels,
            const std::string& value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out.append(labels, 0, labels.size() - 1);
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

std::string codeLabel(int status) {
  return "code=\"" + std::to_string(status) + "\",";
}

}  // namespace

void Histogram::observe(std::chrono::steady_clock::duration elapsed) {
  double seconds = std::chrono::duration<double>(elapsed).count();
  for (size_t i = 0; i < kBounds.size(); ++i) {
    if (seconds <= kBounds[i]) ++counts_[i];
  }
  ++count_;
  sum_ += seconds;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  for (size_t i = 0; i < kBounds.size(); ++i) {
    sample(out, name + "_bucket", labels + "le=\"" + number(kBounds[i]) + "\",",
           std::to_string(counts_[i]));
  }
  sample(out, name + "_bucket", labels + "le=\"+Inf\",", std::to_string(count_));
  sample(out, name + "_sum", labels, number(sum_));
  sample(out, name + "_count", labels, std::to_string(count_));
}

NodeMetrics* RouterMetrics::node(const std::string& node) {
  for (auto& existing : nodes_) {
    if (existing->labels == "node=\"" + labelValue(node) + "\",") return existing.get();
  }
  auto metrics = std::make_unique<NodeMetrics>();
  metrics->labels = "node=\"" + labelValue(node) + "\",";
  nodes_.push_back(std::move(metrics));
  return nodes_.back().get();
}

StepMetrics* RouterMetrics::step(const std::string& node, const std::string& step) {
  auto metrics = std::make_unique<StepMetrics>();
  metrics->labels = "node=\"" + labelValue(node) + "\",step=\"" + labelValue(step) + "\",";
  steps_.push_back(std::move(metrics));
  return steps_.back().get();
}

void RouterMetrics::request(int status, std::chrono::steady_clock::duration elapsed) {
  ++requests_[status];
  requestLatency_.observe(elapsed);
}

std::string RouterMetrics::render() const {
  std::string out;
  header(out, "kserve_router_requests_total", "counter",
         "Requests answered by the graph, by status (499: the client left first).");
  for (const auto& [status, count] : requests_)
    sample(out, "kserve_router_requests_total", codeLabel(status), std::to_string(count));
  header(out, "kserve_router_request_duration_seconds", "histogram",
         "Time from the end of a request's body to the end of its answer.");
  requestLatency_.render(out, "kserve_router_request_duration_seconds", "");
  header(out, "kserve_router_requests_in_flight", "gauge", "Requests the graph is running.");
  sample(out, "kserve_router_requests_in_flight", "", std::to_string(requestsInFlight_));

  header(out, "kserve_router_node_answers_total", "counter",
         "What each node answered, by status (errors with their status: 404 no match, 502 "
         "unreachable, 504 late, 500 others).");
  for (const auto& node : nodes_) {
    for (const auto& [status, count] : node->answers)
      sample(out, "kserve_router_node_answers_total", node->labels + codeLabel(status),
             std::to_string(count));
  }
  header(out, "kserve_router_step_calls_total", "counter",
         "Calls to step services, by status (502: no answer, 504: past serviceClient); each "
         "retry is a call.");
  for (const auto& step : steps_) {
    for (const auto& [status, count] : step->calls)
      sample(out, "kserve_router_step_calls_total", step->labels + codeLabel(status),
             std::to_string(count));
  }
  header(out, "kserve_router_step_duration_seconds", "histogram",
         "Time of each call to a step service, from sending to the end of its answer.");
  for (const auto& step : steps_)
    step->latency.render(out, "kserve_router_step_duration_seconds", step->labels);
  header(out, "kserve_router_step_retries_total", "counter", "Retries of step calls.");
  for (const auto& step : steps_)
    sample(out, "kserve_router_step_retries_total", step->labels, std::to_string(step->retries));
  header(out, "kserve_router_step_cancellations_total", "counter",
         "Step calls cancelled: the client left, an Ensemble answered early, serverWrite fired.");
  for (const auto& step : steps_)
    sample(out, "kserve_router_step_cancellations_total", step->labels,
           std::to_string(step->cancellations));
  header(out, "kserve_router_step_calls_in_flight", "gauge", "Step calls out now.");
  for (const auto& step : steps_)
    sample(out, "kserve_router_step_calls_in_flight", step->labels, std::to_string(step->inFlight));
  return out;
}

core::TerminalStreamPtr MetricsTerminal::start(core::Downstream& exchange) {
  if (exchange.request().path() != "/metrics") {
    exchange.replyError(404, "not found: metrics are at /metrics");
  } else {
    exchange.replyWith(200, "text/plain; version=0.0.4; charset=utf-8", metrics_.render());
  }
  return nullptr;
}

}  // namespace router
