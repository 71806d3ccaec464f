// libFuzzer target: the HTTP request path as a session drives it, minus the
// socket: the bytes are parsed by Beast with the server's limits (one or
// more pipelined requests), each parsed request goes through Dispatch and an
// Exchange (route, headers, JSON body, validation, CounterService) on a real
// FileRepository over the in-memory file system, and the response is
// prepared and serialised. Checked beyond "no crash, no sanitizer report":
//  - every request is answered exactly once, never with a 500;
//  - the serialised response parses back as HTTP/1.1, and a JSON or
//    problem+json body is valid JSON;
//  - what the requests wrote survives compaction and a power loss: after
//    the input, the store is compacted, crashed and reopened, and shows the
//    same counters.
// Authentication: an input that mentions an Authorization header (in any
// case) runs with a tokens file in force (FuzzTokens: the dictionary holds
// its tokens), as the session does it: the Authorizer decides from the
// header first. Then also:
//  - a refused request is a 401 or 403 problem, never echoes the token it
//    carried, and changes nothing in the store;
//  - a request that got through changes only counters its token may write.
// Other inputs run with authentication off, as before.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "counterd/core/clock.h"
#include "counterd/http/auth.h"
#include "counterd/service/counter_service.h"
#include "counterd/storage/file_repository.h"
#include "http/api/exchange.h"
#include "http/api/handlers.h"
#include "http/api/router.h"
#include "http/api/uri.h"
#include "http/auth/digest.h"
#include "http/transport/server_state.h"
#include "support/completions.h"
#include "support/mem_file_system.h"

namespace {

namespace bhttp = boost::beast::http;
using counterd::domain::Counter;
using counterd::http::Exchange;
using counterd::http::HandlerContext;
using counterd::http::PreparePayload;
using counterd::http::Request;
using counterd::http::Response;
using counterd::http::ServerOptions;
using counterd::http::ServerState;
using counterd::storage::FileRepository;

constexpr std::uint32_t kHeaderLimit = 8 * 1024;  // the server's defaults
constexpr std::uint64_t kBodyLimit = 64 * 1024;
constexpr int kMaxRequests = 16;

void Require(bool condition) {
  if (!condition) __builtin_trap();
}

std::map<std::string, Counter> Counters(FileRepository& store) {
  counterd::testing::Captured<counterd::Result<std::vector<Counter>>> listed;
  store.List(counterd::storage::ListRequest{"", "", 1u << 20}, listed);
  Require(listed.done() && listed.value().has_value());
  std::map<std::string, Counter> out;
  for (const Counter& c : *listed.value()) out[c.name] = c;
  return out;
}

// Counts the exchange's answers.
struct Ready final : Exchange::Sink {
  void OnReady() override { ++calls; }
  int calls = 0;
};

counterd::storage::FileRepositoryOptions Options() {
  counterd::storage::FileRepositoryOptions options;
  options.data_dir = "/data";
  options.start_committer = false;
  return options;
}

// Serialises |response| as a session would send it and parses it back.
void CheckWireFormat(const Response& response, bool is_head) {
  std::ostringstream wire;
  wire << response;
  const std::string bytes = wire.str();
  bhttp::response_parser<bhttp::string_body> parser;
  parser.eager(true);
  parser.skip(is_head);
  parser.body_limit(64u << 20);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(bytes), ec);
  if (ec == bhttp::error::need_more && !is_head) {
    parser.put_eof(ec);
  }
  Require(!ec || (is_head && ec == bhttp::error::need_more));
  if (is_head) return;
  Require(parser.is_done());
  const Response& back = parser.get();
  const auto type = back[bhttp::field::content_type];
  if (type == "application/json" || type == "application/problem+json") {
    Require(nlohmann::json::accept(back.body()));
  }
}

// --- Authentication ----------------------------------------------------

// The tokens in force for inputs that mention Authorization. Each token is
// its name plus "-secret" (so a problem detail naming the token's name is
// not mistaken for an echo of the token); the dictionary spells them.
std::shared_ptr<const counterd::http::TokenSet> FuzzTokens() {
  static const auto* const tokens = [] {
    const auto hash = [](std::string_view token) {
      return counterd::http::ToHex(counterd::http::Sha256(token));
    };
    const std::string text =
        R"({"tokens":[)"
        R"({"name":"fuzz-all","sha256":")" +
        hash("fuzz-all-secret") +
        R"(","scopes":["read","write","metrics","admin"]},)"
        R"({"name":"fuzz-read-a","sha256":")" +
        hash("fuzz-read-a-secret") +
        R"(","scopes":["read"],"prefixes":["a"]},)"
        R"({"name":"fuzz-write-b","sha256":")" +
        hash("fuzz-write-b-secret") +
        R"(","scopes":["write"],"prefixes":["b:","default"]},)"
        R"({"name":"fuzz-metrics","sha256":")" +
        hash("fuzz-metrics-secret") + R"(","scopes":["metrics"]}]})";
    auto parsed = counterd::http::ParseTokenFile("fuzz-tokens.json", text);
    Require(parsed.has_value());
    return new std::shared_ptr<const counterd::http::TokenSet>(*parsed);
  }();
  return *tokens;
}

bool MentionsAuthorization(std::string_view input) {
  constexpr std::string_view kName = "authorization";
  for (std::size_t i = 0; i + kName.size() <= input.size(); ++i) {
    bool match = true;
    for (std::size_t j = 0; j < kName.size() && match; ++j) {
      const char c = input[i + j];
      match = (c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) ==
              kName[j];
    }
    if (match) return true;
  }
  return false;
}

// A refusal: a 401/403 problem that does not repeat the presented token.
void CheckRefusal(const Request& request, const Response& refusal) {
  const unsigned status = refusal.result_int();
  Require(status == 401 || status == 403);
  Require(refusal[bhttp::field::content_type] == "application/problem+json");
  Require(!refusal[bhttp::field::www_authenticate].empty());
  const std::string_view sent = request[bhttp::field::authorization];
  const std::size_t space = sent.find(' ');
  if (space != std::string_view::npos && sent.size() - space > 8) {
    Require(refusal.body().find(sent.substr(space + 1)) == std::string::npos);
  }
}

// Every counter that differs between |before| and |after| (created,
// changed or deleted) is one |principal| may write.
void CheckOnlyWritableChanged(const std::map<std::string, Counter>& before,
                              const std::map<std::string, Counter>& after,
                              const counterd::http::Principal& principal) {
  for (const auto& [name, counter] : after) {
    const auto it = before.find(name);
    if (it == before.end() || !(it->second == counter)) {
      Require(principal.MayWrite(name));
    }
  }
  for (const auto& [name, counter] : before) {
    if (!after.contains(name)) Require(principal.MayWrite(name));
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes,
                                      std::size_t size) {
  counterd::testing::MemFileSystem fs;
  const counterd::ManualClock clock(std::chrono::system_clock::time_point(
      std::chrono::milliseconds(1'763'683'200'000)));
  auto store = FileRepository::Open(fs, clock, Options());
  Require(store.has_value());
  counterd::service::CounterService service(**store);
  std::string_view input(reinterpret_cast<const char*>(bytes), size);
  ServerOptions options;
  options.version = "fuzz";
  options.hostname = "fuzz-0";
  if (MentionsAuthorization(input)) options.tokens = FuzzTokens();
  ServerState state(options, service);

  for (int n = 0; n < kMaxRequests && !input.empty(); ++n) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(kBodyLimit);
    parser.eager(true);
    boost::beast::error_code ec;
    const std::size_t used =
        parser.put(boost::asio::buffer(input.data(), input.size()), ec);
    if (ec == bhttp::error::need_more) parser.put_eof(ec);
    if (ec || !parser.is_done()) break;  // the session answers 400/413/431
    input.remove_prefix(used);

    const Request request = parser.release();
    // As the session's OnHeader: authorised from the header, first.
    const counterd::http::RouteMatch match = counterd::http::MatchRoute(
        counterd::http::SplitTarget(request.target()).path);
    counterd::http::Authorizer::Decision auth =
        state.authorizer.Authorize(request, match);
    const auto counters_before = Counters(**store);
    const std::uint64_t seq_before = (*store)->Stats().last_seq;
    if (auth.refusal) {
      CheckRefusal(request, *auth.refusal);
      Require((*store)->Stats().last_seq == seq_before);
      const bool is_head = request.method() == bhttp::verb::head;
      auth.refusal->version(request.version());
      auth.refusal->keep_alive(false);
      PreparePayload(*auth.refusal, is_head);
      CheckWireFormat(*auth.refusal, is_head);
      break;  // the session closes after a refusal
    }
    const HandlerContext context{service, state.status, auth.principal.get()};
    Ready ready;
    Exchange exchange(ready);
    exchange.Start(request, counterd::http::Dispatch(request, match, context),
                   context);
    (*store)->CommitPendingBatch();
    Require(ready.calls == 1);
    std::optional<Response> response = exchange.TakeResponse();
    if (auth.principal && auth.principal->is_limited()) {
      CheckOnlyWritableChanged(counters_before, Counters(**store),
                               *auth.principal);
    }
    const unsigned status = response->result_int();
    Require(status >= 100 && status < 600 && status != 500);
    const bool is_head = request.method() == bhttp::verb::head;
    response->version(request.version());
    response->keep_alive(request.keep_alive());
    PreparePayload(*response, is_head);
    CheckWireFormat(*response, is_head);
    if (used == 0) break;
  }

  // What was acknowledged survives a compaction and a power loss.
  const auto before = Counters(**store);
  if ((*store)->Stats().last_seq == 0) return 0;  // nothing was written
  Require((*store)->CompactNow().ok());
  store->reset();
  fs.SimulateCrash();
  auto reopened = FileRepository::Open(fs, clock, Options());
  Require(reopened.has_value());
  Require(Counters(**reopened) == before);
  return 0;
}
