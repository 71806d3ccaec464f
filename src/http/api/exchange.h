// Exchange: runs one request's Action against the service and renders the
// response. The service may complete on another thread (a committer); the
// Exchange only records the result there and tells its Sink, which brings
// the exchange back to the connection's own thread to render and send —
// the committer never formats a response.
//
// One Exchange serves one request at a time and is reused. Thread-safety:
// Start and TakeResponse on the connection's thread; the Complete calls on
// any thread, once per Start, before Sink::OnReady.
#ifndef COUNTERD_HTTP_API_EXCHANGE_H_
#define COUNTERD_HTTP_API_EXCHANGE_H_

#include <memory>
#include <optional>
#include <variant>

#include "api/handlers.h"

namespace counterd::http {

class Exchange final
    : private service::Completion<Result<std::optional<domain::Counter>>>,
      private service::Completion<Result<service::ListPage>>,
      private service::Completion<domain::TransactionOutcome>,
      private service::Completion<Result<storage::SnapshotImage>> {
 public:
  class Sink {
   public:
    // The response is ready to take (TakeResponse). Called once per Start,
    // possibly inside Start, possibly on another thread.
    virtual void OnReady() = 0;

   protected:
    ~Sink() = default;
  };

  // |sink| must outlive the Exchange.
  explicit Exchange(Sink& sink) : sink_(sink) {}
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;
  ~Exchange() = default;

  // Starts |action| for |request|, which must stay alive and unchanged
  // until TakeResponse. |context| must outlive the exchange.
  void Start(const Request& request, Action action,
             const HandlerContext& context);
  // The response. REQUIRES: OnReady was called for this Start.
  Response TakeResponse();
  // The body to stream after TakeResponse's head, for a response whose
  // body is produced piece by piece (GET /admin/snapshot); else nullptr.
  // The connection sends it chunked. REQUIRES: OnReady was called.
  std::unique_ptr<storage::SnapshotReader> TakeBodyReader();

 private:
  void Complete(Result<std::optional<domain::Counter>> result) override;
  void Complete(Result<service::ListPage> result) override;
  void Complete(domain::TransactionOutcome outcome) override;
  void Complete(Result<storage::SnapshotImage> result) override;

  Sink& sink_;
  const Request* request_ = nullptr;
  const HandlerContext* context_ = nullptr;
  Action action_;
  std::variant<std::monostate, Result<std::optional<domain::Counter>>,
               Result<service::ListPage>, domain::TransactionOutcome,
               Result<storage::SnapshotImage>>
      result_;
};

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_API_EXCHANGE_H_
