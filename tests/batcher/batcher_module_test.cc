// The batcher module on a real libuv loop, with in-memory exchanges and a scripted model server:
// flush triggers, queues, every outcome of the merged call, disconnects, drain and metrics.
#include <prometheus/registry.h>
#include <uv.h>
#include <catch2/catch.hpp>

#include <chrono>
#include <optional>

#include "batcher/batcher.h"
#include "tests/support/fake_exchange.h"

using namespace std::chrono_literals;
using core::Action;

namespace {

using testsupport::FakeExchange;

// Records merged calls; the test answers them when it wants to.
class FakeUpstream final : public core::UpstreamClient {
 public:
  struct Call {
    core::UpstreamRequest request;
    std::function<void(core::UpstreamResult)> done;
  };
  // The batcher does not cancel its calls; the handle only has to be valid.
  struct Handle final : core::UpstreamCall {
    void cancel() override {}
  };
  core::UpstreamCall* send(core::UpstreamRequest request,
                           std::function<void(core::UpstreamResult)> done) override {
    calls.push_back({std::move(request), std::move(done)});
    return &handle;
  }
  void answer(size_t index, int status, std::string body, std::string error = "") {
    core::UpstreamResult result;
    result.status = status;
    result.body = std::move(body);
    result.error = std::move(error);
    if (status != 0) result.headers.push_back({"Content-Type", "application/json"});
    auto done = std::move(calls.at(index).done);
    done(std::move(result));
  }
  std::vector<Call> calls;
  Handle handle;
};

// A loop, a scripted upstream and the module; checks the loop closes cleanly at the end.
struct Fixture {
  explicit Fixture(batcher::Options options = {}, prometheus::Registry* registry = nullptr) {
    uv_loop_init(&loop);
    core::FilterContext context;
    context.loop = &loop;
    context.upstream = &upstream;
    options.metrics = registry;
    module = batcher::makeBatcher(context, options);
  }
  ~Fixture() {
    module.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }

  // Sends one request through the module as the chain does; returns the exchange.
  std::shared_ptr<FakeExchange> post(const std::string& target, std::string body,
                                     core::Headers headers = {{"Content-Type", "application/json"}},
                                     Action* outcome = nullptr) {
    auto exchange = std::make_shared<FakeExchange>("POST", target, std::move(headers));
    core::ExchangePtr pointer = exchange;
    Action action = module->onRequestHeaders(pointer);
    if (action == Action::Buffer || action == Action::BufferOrContinue) {
      action = module->onRequestBody(pointer, body);
    }
    if (outcome != nullptr) *outcome = action;
    return exchange;
  }

  // Runs the loop until `done` holds or nothing is left to wait for.
  template <typename Predicate>
  void runUntil(Predicate done) {
    while (!done() && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
  }

  uv_loop_t loop;
  FakeUpstream upstream;
  std::unique_ptr<core::Filter> module;
};

batcher::Options options(int size, int latencyMs) {
  batcher::Options o;
  o.maxBatchSize = size;
  o.maxLatencyMs = latencyMs;
  return o;
}

std::string instance(int i) {
  return R"({"instances":[[)" + std::to_string(i) + "]]}";
}

}  // namespace

TEST_CASE("module: N instances flush at once and every caller gets its own slice", "[batcher]") {
  Fixture f(options(4, 60000));
  std::vector<std::shared_ptr<FakeExchange>> callers;
  for (int i = 0; i < 8; ++i)
    callers.push_back(f.post("/v1/models/m:predict", instance(i)));
  REQUIRE(f.upstream.calls.size() == 2);
  CHECK(f.upstream.calls[0].request.body == R"({"instances":[[0],[1],[2],[3]]})");
  CHECK(f.upstream.calls[1].request.body == R"({"instances":[[4],[5],[6],[7]]})");
  CHECK(f.upstream.calls[0].request.target == "/v1/models/m:predict");
  f.upstream.answer(1, 200, R"({"predictions":[40,50,60,70]})");
  f.upstream.answer(0, 200, R"({"predictions":[0,10,20,30]})");
  std::string firstId;
  for (int i = 0; i < 8; ++i) {
    auto& caller = *callers[static_cast<size_t>(i)];
    INFO(i);
    CHECK(caller.status() == 200);
    CHECK(caller.header("Content-Type") == "application/json");
    CHECK(caller.body().starts_with(R"({"message":"","batchId":")"));
    CHECK(caller.body().ends_with(R"(","predictions":[)" + std::to_string(i * 10) + "]}"));
  }
  CHECK(callers[0]->body().substr(0, 60) == callers[3]->body().substr(0, 60));
  CHECK(callers[0]->body().substr(0, 60) != callers[4]->body().substr(0, 60));
}

TEST_CASE("module: a lone request is flushed by the latency timer", "[batcher]") {
  Fixture f(options(32, 80));
  auto start = std::chrono::steady_clock::now();
  auto caller = f.post("/v1/models/m:predict", instance(1));
  CHECK(f.upstream.calls.empty());
  f.runUntil([&] { return !f.upstream.calls.empty(); });
  auto waited = std::chrono::steady_clock::now() - start;
  REQUIRE(f.upstream.calls.size() == 1);
  // libuv's loop clock counts whole milliseconds from a clock that may lag by up to one more
  // (CLOCK_MONOTONIC_COARSE), so the timer may fire up to 2 ms before 80 ms of steady_clock.
  CHECK(waited >= 78ms);
  CHECK(waited < 1s);
  f.upstream.answer(0, 200, R"({"predictions":[1]})");
  CHECK(caller->status() == 200);
}

TEST_CASE("module: requests are never split, so a batch may exceed N", "[batcher]") {
  Fixture f(options(4, 60000));
  f.post("/v1/models/m:predict", R"({"instances":[1,2,3]})");
  CHECK(f.upstream.calls.empty());
  f.post("/v1/models/m:predict", R"({"instances":[4,5,6]})");
  REQUIRE(f.upstream.calls.size() == 1);
  CHECK(f.upstream.calls[0].request.body == R"({"instances":[1,2,3,4,5,6]})");
  f.post("/v1/models/m:predict", R"({"instances":[1,2,3,4,5,6,7,8,9]})");
  CHECK(f.upstream.calls.size() == 2);
  f.upstream.answer(0, 500, "x");
  f.upstream.answer(1, 500, "x");
}

TEST_CASE("module: different paths never share a batch", "[batcher]") {
  Fixture f(options(2, 60000));
  f.post("/v1/models/a:predict", instance(1));
  f.post("/v1/models/b:predict", instance(2));
  CHECK(f.upstream.calls.empty());
  f.post("/v1/models/b:predict", instance(3));
  REQUIRE(f.upstream.calls.size() == 1);
  CHECK(f.upstream.calls[0].request.target == "/v1/models/b:predict");
  CHECK(f.upstream.calls[0].request.body == R"({"instances":[[2],[3]]})");
  f.post("/v1/models/a:predict?x=1", instance(4));
  REQUIRE(f.upstream.calls.size() == 2);
  CHECK(f.upstream.calls[1].request.target == "/v1/models/a:predict");
  f.upstream.answer(0, 500, "");
  f.upstream.answer(1, 500, "");
}

TEST_CASE("module: the merged call carries the caller's Content-Type and the timeout",
          "[batcher]") {
  batcher::Options o = options(1, 60000);
  o.timeout = 1234ms;
  Fixture f(o);
  f.post("/v1/models/m:predict", instance(1),
         {{"Content-Type", "application/json; charset=utf-8"}});
  REQUIRE(f.upstream.calls.size() == 1);
  const auto& request = f.upstream.calls[0].request;
  CHECK(request.method == "POST");
  CHECK(request.timeout == 1234ms);
  const std::string* type = core::findHeader(request.headers, "Content-Type");
  REQUIRE(type != nullptr);
  CHECK(*type == "application/json; charset=utf-8");
  f.upstream.answer(0, 200, R"({"predictions":[1]})");
}

TEST_CASE("module: malformed v1 bodies get upstream's 400 answers", "[batcher]") {
  Fixture f(options(1, 60000));
  Action action{};
  auto bad = f.post("/v1/models/m:predict", "nope", {}, &action);
  CHECK(action == Action::Handled);
  CHECK(bad->status() == 400);
  CHECK(bad->body() == "can't Unmarshal body\n");
  CHECK(bad->header("Content-Type") == "text/plain; charset=utf-8");
  CHECK(bad->header("X-Content-Type-Options") == "nosniff");
  auto empty = f.post("/v1/models/m:predict", R"({"instances":[]})");
  CHECK(empty->status() == 400);
  CHECK(empty->body() == "no instances in the request\n");
  CHECK(f.upstream.calls.empty());
}

TEST_CASE("module: bodies above the limit get 413", "[batcher]") {
  batcher::Options o = options(1, 60000);
  o.maxBodyBytes = 16;
  Fixture f(o);
  Action action{};
  auto declared = f.post("/v1/models/m:predict", "", {{"Content-Length", "17"}}, &action);
  CHECK(action == Action::Handled);
  CHECK(declared->status() == 413);
  auto chunked = f.post("/v1/models/m:predict", R"({"instances":[1,2,3,4]})", {}, &action);
  CHECK(chunked->status() == 413);
  CHECK(f.upstream.calls.empty());
}

TEST_CASE("module: only :predict and v2 infer requests are held", "[batcher]") {
  Fixture f(options(1, 60000));
  for (auto [method, target] :
       std::vector<std::pair<std::string, std::string>>{{"POST", "/v1/models/m:explain"},
                                                        {"POST", "/v1/models/m:predict/"},
                                                        {"GET", "/v2/models/m/infer"},
                                                        {"POST", "/v2/models/m/ready"},
                                                        {"POST", "/openai/v1/completions"}}) {
    auto exchange = std::make_shared<FakeExchange>(method, target, core::Headers{});
    INFO(target);
    CHECK(f.module->onRequestHeaders(exchange) == Action::Continue);
  }
  auto binary = std::make_shared<FakeExchange>(
      "POST", "/v2/models/m/infer", core::Headers{{"Inference-Header-Content-Length", "10"}});
  CHECK(f.module->onRequestHeaders(binary) == Action::Continue);
  auto get = std::make_shared<FakeExchange>("GET", "/v1/models/m:predict", core::Headers{});
  CHECK(f.module->onRequestHeaders(get) == Action::Buffer);
  // v2 bodies the batcher cannot hold go on unbuffered; v1 ones are refused (413) as upstream.
  auto v2 = std::make_shared<FakeExchange>("POST", "/v2/models/m/infer", core::Headers{});
  CHECK(f.module->onRequestHeaders(v2) == Action::BufferOrContinue);
}

TEST_CASE("module: every outcome of the merged call answers every caller", "[batcher]") {
  struct Row {
    int status;
    std::string body;
    std::string error;
    std::string message;
    bool hasBatchId;
  };
  const std::vector<Row> rows{
      {500, R"({"error":"model failed"})", "", R"({\"error\":\"model failed\"})", false},
      {201, R"({"predictions":[1,2,3]})", "", R"({\"predictions\":[1,2,3]})", false},
      {0, "", "connection refused", "connection refused", false},
      {0, "", "timed out after 50ms", "timed out after 50ms", false},
      {200, "x-not-json", "", "invalid character 'x' looking for beginning of value", true},
      {200, R"({"predictions":[1,2]})", "",
       "size of prediction is not equal to the size of instances", true},
      {200, "{}", "", "size of prediction is not equal to the size of instances", true},
  };
  for (const auto& row : rows) {
    INFO(row.status << " " << row.body << row.error);
    Fixture f(options(3, 60000));
    auto a = f.post("/v1/models/m:predict", R"({"instances":[1,2]})");
    auto b = f.post("/v1/models/m:predict", R"({"instances":[3]})");
    REQUIRE(f.upstream.calls.size() == 1);
    f.upstream.answer(0, row.status, row.body, row.error);
    for (const auto& caller : {a, b}) {
      CHECK(caller->status() == 200);
      CHECK(caller->header("Content-Type") == "application/json");
      CHECK(caller->body().starts_with(R"({"message":")" + row.message + R"(","batchId":")"));
      CHECK(caller->body().ends_with(R"(","predictions":null})"));
      const bool emptyBatchId = caller->body().find(R"("batchId":"")") != std::string::npos;
      CHECK(emptyBatchId != row.hasBatchId);
    }
    CHECK(a->body() == b->body());
  }
}

TEST_CASE("module: several batches are in flight at once", "[batcher]") {
  Fixture f(options(1, 60000));
  auto a = f.post("/v1/models/m:predict", instance(1));
  auto b = f.post("/v1/models/m:predict", instance(2));
  auto c = f.post("/v1/models/m:predict", instance(3));
  REQUIRE(f.upstream.calls.size() == 3);
  f.upstream.answer(2, 200, R"({"predictions":["c"]})");
  CHECK(c->status() == 200);
  CHECK(a->status() == 0);
  f.upstream.answer(0, 200, R"({"predictions":["a"]})");
  f.upstream.answer(1, 200, R"({"predictions":["b"]})");
  CHECK(a->body().ends_with(R"("predictions":["a"]})"));
  CHECK(b->body().ends_with(R"("predictions":["b"]})"));
}

TEST_CASE("module: a client that leaves does not break its batch", "[batcher]") {
  Fixture f(options(4, 60000));
  auto a = f.post("/v1/models/m:predict", instance(1));
  auto gone = f.post("/v1/models/m:predict", instance(2));
  gone->gone = true;
  auto c = f.post("/v1/models/m:predict", instance(3));
  CHECK(f.upstream.calls.empty());
  auto d = f.post("/v1/models/m:predict", instance(4));
  REQUIRE(f.upstream.calls.size() == 1);
  // The caller that left before the flush is not sent to the model.
  CHECK(f.upstream.calls[0].request.body == R"({"instances":[[1],[3],[4]]})");
  c->gone = true;  // leaves while the merged call is out
  f.upstream.answer(0, 200, R"({"predictions":[10,30,40]})");
  CHECK(a->body().ends_with(R"("predictions":[10]})"));
  CHECK(d->body().ends_with(R"("predictions":[40]})"));
  CHECK(gone->replies == 0);
  CHECK(c->replies == 0);
}

TEST_CASE("module: a batch whose callers all left is not sent", "[batcher]") {
  Fixture f(options(32, 20));
  auto a = f.post("/v1/models/m:predict", instance(1));
  a->gone = true;
  f.runUntil([] { return false; });
  CHECK(f.upstream.calls.empty());
}

TEST_CASE("module: drain flushes pending batches and waits for their answers", "[batcher]") {
  Fixture f(options(32, 60000));
  auto a = f.post("/v1/models/a:predict", instance(1));
  auto b = f.post("/v1/models/b:predict", instance(2));
  bool drained = false;
  f.module->drain(std::chrono::steady_clock::now() + 10s, [&] { drained = true; });
  CHECK(f.upstream.calls.size() == 2);
  CHECK_FALSE(drained);
  auto late = f.post("/v1/models/a:predict", instance(3));
  CHECK(f.upstream.calls.size() == 3);
  f.upstream.answer(0, 200, R"({"predictions":[1]})");
  f.upstream.answer(1, 200, R"({"predictions":[2]})");
  CHECK_FALSE(drained);
  f.upstream.answer(2, 200, R"({"predictions":[3]})");
  CHECK(drained);
  CHECK(a->status() == 200);
  CHECK(b->status() == 200);
  CHECK(late->status() == 200);
}

TEST_CASE("module: drain with nothing pending is done at once", "[batcher]") {
  Fixture f;
  bool drained = false;
  f.module->drain(std::chrono::steady_clock::now() + 10s, [&] { drained = true; });
  CHECK(drained);
}

TEST_CASE("module: at the drain deadline callers still waiting are answered", "[batcher]") {
  Fixture f(options(32, 60000));
  auto a = f.post("/v1/models/m:predict", instance(1));
  bool drained = false;
  f.module->drain(std::chrono::steady_clock::now() + 50ms, [&] { drained = true; });
  f.runUntil([&] { return drained; });
  CHECK(drained);
  CHECK(a->status() == 200);
  CHECK(a->body().find("shut down") != std::string::npos);
  f.upstream.answer(0, 200, R"({"predictions":[1]})");  // too late: nobody is answered twice
  CHECK(a->replies == 1);
}

TEST_CASE("module: v2 requests are merged and split back", "[batcher]") {
  Fixture f(options(3, 60000));
  auto a =
      f.post("/v2/models/m/infer",
             R"({"id":"a","inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]})");
  auto other =
      f.post("/v2/models/m/infer",
             R"({"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]})");
  auto b = f.post("/v2/models/m/infer",
                  R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[3,4,5,6]}]})");
  REQUIRE(f.upstream.calls.size() == 1);
  CHECK(f.upstream.calls[0].request.target == "/v2/models/m/infer");
  CHECK(f.upstream.calls[0].request.body ==
        R"({"inputs":[{"name":"x","shape":[3,2],"datatype":"FP32","data":[1,2,3,4,5,6]}]})");
  f.upstream.answer(0, 200,
                    R"({"model_name":"m","outputs":[{"name":"y","shape":[3,2],"datatype":"FP32",)"
                    R"("data":[10,20,30,40,50,60]}]})");
  CHECK(a->status() == 200);
  CHECK(
      a->body() ==
      R"({"model_name":"m","id":"a","outputs":[{"name":"y","shape":[1,2],"datatype":"FP32","data":[10,20]}]})");
  CHECK(
      b->body() ==
      R"({"model_name":"m","outputs":[{"name":"y","shape":[2,2],"datatype":"FP32","data":[30,40,50,60]}]})");
  CHECK(other->status() == 0);  // a different trailing shape waits in its own queue
}

TEST_CASE("module: v2 requests that cannot be merged pass through", "[batcher]") {
  Fixture f(options(1, 60000));
  Action action{};
  f.post("/v2/models/m/infer",
         R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1]}]})", {}, &action);
  CHECK(action == Action::Continue);
  f.post("/v2/models/m/infer", "garbage", {}, &action);
  CHECK(action == Action::Continue);
  CHECK(f.upstream.calls.empty());
}

TEST_CASE("module: v2 failures answer every caller in the protocol's form", "[batcher]") {
  const std::string request =
      R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]})";
  {
    Fixture f(options(2, 60000));
    auto a = f.post("/v2/models/m/infer", request);
    auto b = f.post("/v2/models/m/infer", request);
    f.upstream.answer(0, 400, R"({"error":"bad input"})");
    for (const auto& caller : {a, b}) {
      CHECK(caller->status() == 400);
      CHECK(caller->body() == R"({"error":"bad input"})");
    }
  }
  {
    Fixture f(options(2, 60000));
    auto a = f.post("/v2/models/m/infer", request);
    auto b = f.post("/v2/models/m/infer", request);
    f.upstream.answer(0, 0, "", "connection refused");
    for (const auto& caller : {a, b}) {
      CHECK(caller->status() == 502);
      CHECK(caller->body() == R"({"error":"connection refused"})");
    }
  }
  {
    Fixture f(options(2, 60000));
    auto a = f.post("/v2/models/m/infer", request);
    auto b = f.post("/v2/models/m/infer", request);
    f.upstream.answer(0, 200,
                      R"({"outputs":[{"name":"y","shape":[1],"datatype":"FP32","data":[1]}]})");
    for (const auto& caller : {a, b}) {
      CHECK(caller->status() == 502);
      CHECK(caller->body().find("cannot split") != std::string::npos);
    }
  }
}

TEST_CASE("module: metrics count batches, sizes and flush reasons", "[batcher]") {
  prometheus::Registry registry;
  {
    Fixture f(options(2, 30), &registry);
    f.post("/v1/models/m:predict", R"({"instances":[1,2]})");
    f.post("/v1/models/m:predict", instance(3));
    f.runUntil([&] { return f.upstream.calls.size() == 2; });
    f.post("/v1/models/m:predict", instance(4));
    f.module->drain(std::chrono::steady_clock::now() + 10s, [] {});
    REQUIRE(f.upstream.calls.size() == 3);
    for (size_t i = 0; i < 3; ++i)
      f.upstream.answer(i, 500, "");
  }
  std::map<std::string, double> values;
  for (const auto& family : registry.Collect()) {
    for (const auto& metric : family.metric) {
      std::string name = family.name;
      for (const auto& label : metric.label)
        name += "{" + label.value + "}";
      if (family.type == prometheus::MetricType::Counter) values[name] = metric.counter.value;
      if (family.type == prometheus::MetricType::Histogram) {
        values[name + "count"] = static_cast<double>(metric.histogram.sample_count);
        values[name + "sum"] = metric.histogram.sample_sum;
      }
    }
  }
  CHECK(values["kserve_agent_batcher_batches_total{v1}"] == 3);
  CHECK(values["kserve_agent_batcher_batches_total{v2}"] == 0);
  CHECK(values["kserve_agent_batcher_flushes_total{size}"] == 1);
  CHECK(values["kserve_agent_batcher_flushes_total{latency}"] == 1);
  CHECK(values["kserve_agent_batcher_flushes_total{drain}"] == 1);
  CHECK(values["kserve_agent_batcher_batch_sizecount"] == 3);
  CHECK(values["kserve_agent_batcher_batch_sizesum"] == 4);
}

TEST_CASE("module: a v2 success other than 200 is split and relayed with its status", "[batcher]") {
  const std::string answer =
      R"({"outputs":[{"name":"y","shape":[2],"datatype":"INT64","data":[111,222]}]})";
  for (int status : {201, 203}) {
    INFO(status);
    Fixture f(options(2, 60000));
    auto a = f.post("/v2/models/m/infer",
                    R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[1]}]})");
    auto b = f.post("/v2/models/m/infer",
                    R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[2]}]})");
    REQUIRE(f.upstream.calls.size() == 1);
    f.upstream.answer(0, status, answer);
    CHECK(a->status() == status);
    CHECK(a->header("Content-Type") == "application/json");
    CHECK(a->body() == R"({"outputs":[{"name":"y","shape":[1],"datatype":"INT64","data":[111]}]})");
    CHECK(b->status() == status);
    CHECK(b->body() == R"({"outputs":[{"name":"y","shape":[1],"datatype":"INT64","data":[222]}]})");
  }
}

TEST_CASE("module: a v2 success that cannot be split gives no caller the model's answer",
          "[batcher]") {
  const std::string request =
      R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[1]}]})";
  const std::vector<std::pair<int, std::string>> answers{
      {204, ""},
      {202, R"({"queued":[111,222]})"},
      {201, R"({"outputs":[{"name":"y","shape":[3],"datatype":"INT64","data":[111,222,333]}]})"},
  };
  for (const auto& [status, body] : answers) {
    INFO(status << " " << body);
    Fixture f(options(2, 60000));
    auto a = f.post("/v2/models/m/infer", request);
    auto b = f.post("/v2/models/m/infer", request);
    REQUIRE(f.upstream.calls.size() == 1);
    f.upstream.answer(0, status, body);
    for (const auto& caller : {a, b}) {
      CHECK(caller->status() == 502);
      CHECK(caller->body().starts_with(R"({"error":"batcher: cannot split the model's answer: )"));
      CHECK(caller->body().find("111") == std::string::npos);
    }
  }
}

TEST_CASE("module: percent-encoded :predict and v2 infer paths are batched as sent", "[batcher]") {
  Fixture f(options(2, 60000));
  auto upper = f.post("/v1/models/m%3Apredict", instance(1));
  auto lower = f.post("/v1/models/m%3apredict", instance(2));
  auto plain = f.post("/v1/models/m:predict", instance(3));
  // Each spelling waits in its own queue, so the merged call keeps the callers' target.
  CHECK(f.upstream.calls.empty());
  f.post("/v1/models/m%3Apredict?x=1", instance(4));
  REQUIRE(f.upstream.calls.size() == 1);
  CHECK(f.upstream.calls[0].request.target == "/v1/models/m%3Apredict");
  CHECK(f.upstream.calls[0].request.body == R"({"instances":[[1],[4]]})");
  f.upstream.answer(0, 200, R"({"predictions":[10,40]})");
  CHECK(upper->status() == 200);
  CHECK(upper->body().ends_with(R"("predictions":[10]})"));

  f.post("/v1/models/m%3apredict", instance(5));
  f.post("/v1/models/m:predict", instance(6));
  REQUIRE(f.upstream.calls.size() == 3);
  CHECK(f.upstream.calls[1].request.target == "/v1/models/m%3apredict");
  CHECK(f.upstream.calls[2].request.target == "/v1/models/m:predict");
  f.upstream.answer(1, 200, R"({"predictions":[20,50]})");
  f.upstream.answer(2, 200, R"({"predictions":[30,60]})");
  CHECK(lower->body().ends_with(R"("predictions":[20]})"));
  CHECK(plain->body().ends_with(R"("predictions":[30]})"));

  const std::string v2 = R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT64","data":[1]}]})";
  Action action{};
  f.post("/v2/models/m/inf%65r", v2, {}, &action);
  CHECK(action == Action::Handled);
  f.post("/v2/models/m/inf%65r", v2);
  REQUIRE(f.upstream.calls.size() == 4);
  CHECK(f.upstream.calls[3].request.target == "/v2/models/m/inf%65r");
}

TEST_CASE("module: paths that only look encoded are not batched", "[batcher]") {
  Fixture f(options(1, 60000));
  for (std::string target :
       {"/v1/models/m%3Aexplain", "/v1/models/m%zz:predict", "/v1/models/m:predict%",
        "/v1/models/m:predict%2", "/v1/models/m%253Apredict", "/v2/models/m%2Finfer%2F"}) {
    auto exchange = std::make_shared<FakeExchange>("POST", target, core::Headers{});
    INFO(target);
    CHECK(f.module->onRequestHeaders(exchange) == Action::Continue);
  }
}
