#include "api/exchange.h"

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "api/problem.h"

namespace counterd::http {

void Exchange::Start(const Request& request, Action action,
                     const HandlerContext& context) {
  request_ = &request;
  context_ = &context;
  service::CounterService& service = context.service;
  action_ = std::move(action);
  result_ = std::monostate{};
  if (auto* read = std::get_if<ReadCall>(&action_)) {
    return service.Get(read->name, *this);
  }
  if (auto* list = std::get_if<ListCall>(&action_)) {
    return service.List(list->query, *this);
  }
  if (std::holds_alternative<SnapshotCall>(action_)) {
    return service.Snapshot(*this);
  }
  if (auto* commit = std::get_if<CommitCall>(&action_)) {
    // Rendering needs only the shape: the transaction itself moves on.
    return service.Commit(std::move(commit->tx), *this);
  }
  sink_.OnReady();  // an immediate answer
}

void Exchange::Complete(Result<std::optional<domain::Counter>> result) {
  result_ = std::move(result);
  sink_.OnReady();
}

void Exchange::Complete(Result<service::ListPage> result) {
  result_ = std::move(result);
  sink_.OnReady();
}

void Exchange::Complete(domain::TransactionOutcome outcome) {
  result_ = std::move(outcome);
  sink_.OnReady();
}

void Exchange::Complete(Result<storage::SnapshotImage> result) {
  result_ = std::move(result);
  sink_.OnReady();
}

std::unique_ptr<storage::SnapshotReader> Exchange::TakeBodyReader() {
  auto* image = std::get_if<Result<storage::SnapshotImage>>(&result_);
  if (image == nullptr || !*image) return nullptr;
  return std::move((*image)->document);
}

Response Exchange::TakeResponse() {
  const Request& request = *request_;
  if (auto* response = std::get_if<Response>(&action_)) {
    return std::move(*response);
  }
  if (const auto* read = std::get_if<ReadCall>(&action_)) {
    return RenderRead(
        request, *read,
        std::get<Result<std::optional<domain::Counter>>>(result_));
  }
  if (std::holds_alternative<ListCall>(action_)) {
    return RenderList(request, std::get<Result<service::ListPage>>(result_));
  }
  if (std::holds_alternative<SnapshotCall>(action_)) {
    return RenderSnapshot(std::get<Result<storage::SnapshotImage>>(result_),
                          request);
  }
  if (std::holds_alternative<WatchCall>(action_)) {
    // A watch is served by the connection (the transport takes it out of
    // Dispatch's hands); an exchange cannot stream.
    return MakeProblemResponse(
        MakeProblem(ProblemType::kNotImplemented,
                    "a watch stream is served only by a connection",
                    std::string(request.target())));
  }
  const std::int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          context_->status.clock.Now().time_since_epoch())
          .count();
  return RenderCommit(request, std::get<CommitCall>(action_),
                      std::get<domain::TransactionOutcome>(result_), now_ms);
}

}  // namespace counterd::http
