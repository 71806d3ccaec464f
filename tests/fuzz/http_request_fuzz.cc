// libFuzzer target: the HTTP request path as a session drives it, minus the
// socket. The bytes go through the session's own RequestReader (Beast's
// parser plus counterd's framing rules) with the server's limits, one
// message after another as on a keep-alive connection; each accepted
// request goes through Dispatch and an Exchange (route, headers, JSON body,
// validation, CounterService) on a real FileRepository over the in-memory
// file system, and the response is prepared and serialised.
//
// Oracles, beyond "no crash, no sanitizer report":
//  1. Framing (STYLE.md §26): where the reader says a message ends must be
//     where a small reference implementation of RFC 9112 §6.3 (below,
//     written from the RFC, not from the reader) says it ends. The reader
//     may refuse more than the reference (it also checks Host, limits,
//     syntax), never less; and it must not wait for more bytes when the
//     reference already sees a complete message.
//  2. A refused message changes nothing in the store, and nothing after it
//     is parsed (the session closes the connection).
//  3. The same bytes are framed the same way however they are split into
//     reads: the stream fed whole and fed in two pieces (split at a point
//     the input chooses) give the same message boundaries.
//  4. Every accepted request is answered exactly once, never with a 500;
//     the serialised response parses back as HTTP/1.1 and a JSON or
//     problem+json body is valid JSON.
//  5. What the requests wrote survives compaction and a power loss.
// Authentication: an input that mentions an Authorization header (in any
// case) runs with a tokens file in force (FuzzTokens: the dictionary holds
// its tokens), as the session does it: the Authorizer decides from the
// header first. Then also (oracle 6):
//  - a refused request is a 401 or 403 problem, never echoes the token it
//    carried, and changes nothing in the store;
//  - a request that got through changes only counters its token may write.
// Other inputs run with authentication off, as before.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>
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
#include "http/transport/request_reader.h"
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
using counterd::http::RequestReader;
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

// ---------------------------------------------------------------------------
// Reference framing (RFC 9112 §6.3), deliberately naive: it only finds
// where a message ends, and refuses exactly what makes that ambiguous.

struct ReferenceFraming {
  enum Kind { kIncomplete, kRefused, kMessage } kind = kIncomplete;
  std::size_t end = 0;  // kMessage: bytes from the message's first octet
};

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           const auto lower = [](char c) {
             return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
           };
           return lower(x) == lower(y);
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// chunked-body = *chunk last-chunk trailer-section CRLF, from |pos|.
ReferenceFraming ReferenceChunkedEnd(std::string_view in, std::size_t pos) {
  for (;;) {
    const std::size_t eol = in.find("\r\n", pos);
    if (eol == std::string_view::npos) return {};
    std::uint64_t size = 0;
    std::size_t digits = 0;
    for (std::size_t i = pos; i < eol; ++i, ++digits) {
      const char c = in[i];
      int v = -1;
      if (c >= '0' && c <= '9') v = c - '0';
      if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
      if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
      if (v < 0) break;  // a chunk extension follows
      if (size > (UINT64_MAX >> 4)) return {ReferenceFraming::kRefused};
      size = size * 16 + static_cast<std::uint64_t>(v);
    }
    if (digits == 0) return {ReferenceFraming::kRefused};
    pos = eol + 2;
    if (size == 0) break;
    if (size > in.size() - pos || in.size() - pos - size < 2) return {};
    pos += size;
    if (in.substr(pos, 2) != "\r\n") return {ReferenceFraming::kRefused};
    pos += 2;
  }
  // trailer-section: field lines up to an empty line.
  for (;;) {
    const std::size_t eol = in.find("\r\n", pos);
    if (eol == std::string_view::npos) return {};
    if (eol == pos) return {ReferenceFraming::kMessage, eol + 2};
    pos = eol + 2;
  }
}

ReferenceFraming ReferenceMessageEnd(std::string_view in) {
  const std::size_t header_end = in.find("\r\n\r\n");
  if (header_end == std::string_view::npos) return {};
  const std::size_t body = header_end + 4;
  std::string_view head = in.substr(0, header_end + 2);
  const std::size_t line_end = head.find("\r\n");
  // request-line = method SP request-target SP "HTTP/1." DIGIT; anything
  // else is no message (a parser may wait for more bytes before saying so).
  const std::string_view request_line = head.substr(0, line_end);
  const std::size_t sp1 = request_line.find(' ');
  const std::size_t sp2 = request_line.rfind(' ');
  const std::string_view version =
      sp2 == std::string_view::npos ? "" : request_line.substr(sp2 + 1);
  if (sp1 == 0 || sp1 == std::string_view::npos || sp1 + 1 >= sp2 ||
      version.size() != 8 || !version.starts_with("HTTP/1.") ||
      version[7] < '0' || version[7] > '9') {
    return {ReferenceFraming::kRefused};
  }
  const bool http10 = version == "HTTP/1.0";
  head.remove_prefix(line_end + 2);

  std::vector<std::string_view> te;
  std::vector<std::string_view> cl;
  while (!head.empty()) {
    const std::size_t eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    // obs-fold makes field boundaries a matter of opinion: refuse.
    if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
      return {ReferenceFraming::kRefused};
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return {ReferenceFraming::kRefused};
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = Trim(line.substr(colon + 1));
    if (IEquals(name, "transfer-encoding")) te.push_back(value);
    if (IEquals(name, "content-length")) cl.push_back(value);
  }

  if (!te.empty()) {
    // Transfer-Encoding wins only if it is exactly "chunked" (one coding,
    // any case, no parameters), with no Content-Length, in HTTP/1.1.
    if (http10 || !cl.empty()) return {ReferenceFraming::kRefused};
    std::vector<std::string_view> codings;
    for (std::string_view value : te) {
      while (true) {
        const std::size_t comma = value.find(',');
        const std::string_view coding = Trim(value.substr(0, comma));
        if (!coding.empty()) codings.push_back(coding);
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
      }
    }
    if (codings.size() != 1 || !IEquals(codings[0], "chunked")) {
      return {ReferenceFraming::kRefused};
    }
    return ReferenceChunkedEnd(in, body);
  }
  if (cl.empty()) return {ReferenceFraming::kMessage, body};
  if (cl.size() != 1 || cl[0].empty()) return {ReferenceFraming::kRefused};
  std::uint64_t length = 0;
  for (const char c : cl[0]) {
    if (c < '0' || c > '9' || length > (UINT64_MAX - 9) / 10) {
      return {ReferenceFraming::kRefused};
    }
    length = length * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (length > in.size() - body) return {};
  return {ReferenceFraming::kMessage, body + length};
}

// ---------------------------------------------------------------------------
// The reader over a byte stream, as a session drives it.

struct Outcome {
  enum Kind { kMessage, kRefused, kIncomplete } kind = kIncomplete;
  std::size_t start = 0;  // offset of the message's first byte
  std::size_t end = 0;    // kMessage: offset just past it
  counterd::http::ProblemType refusal{};
};

void Append(boost::beast::flat_buffer& buffer, std::string_view bytes) {
  buffer.commit(boost::asio::buffer_copy(buffer.prepare(bytes.size()),
                                         boost::asio::buffer(bytes)));
}

// Frames |input| message by message, fed first up to |split| and the rest
// when the reader asks for more. |on_message| (optional) gets each accepted
// request and its outcome. Stops at the first refusal, as the session
// closes the connection there.
std::vector<Outcome> Frame(
    std::string_view input, std::size_t split,
    const std::function<void(Request, const Outcome&)>& on_message) {
  std::vector<Outcome> outcomes;
  boost::beast::flat_buffer buffer;
  Append(buffer, input.substr(0, split));
  bool all_fed = split >= input.size();
  std::size_t consumed = 0;  // offset in |input| of buffer's first byte
  RequestReader reader;
  const auto offset = [&] {
    return (all_fed ? input.size() : split) - buffer.size();
  };
  for (int n = 0; n < kMaxRequests; ++n) {
    consumed = offset();
    if (consumed == input.size()) break;
    reader.Start(kHeaderLimit, kBodyLimit);
    RequestReader::Step step = RequestReader::Step::kNeedMore;
    bool in_body = false;
    for (;;) {
      step = in_body ? reader.ParseBody(buffer) : reader.ParseHeader(buffer);
      if (step == RequestReader::Step::kDone && !in_body) {
        in_body = true;
        continue;
      }
      if (step != RequestReader::Step::kNeedMore || all_fed) break;
      Append(buffer, input.substr(split));
      all_fed = true;
    }
    Outcome outcome;
    outcome.start = consumed;
    if (step == RequestReader::Step::kRefused) {
      outcome.kind = Outcome::kRefused;
      outcome.refusal = reader.refusal().type;
      outcomes.push_back(outcome);
      break;
    }
    if (step == RequestReader::Step::kNeedMore) {
      outcome.kind = Outcome::kIncomplete;
      outcomes.push_back(outcome);
      break;
    }
    outcome.kind = Outcome::kMessage;
    outcome.end = offset();
    outcomes.push_back(outcome);
    if (on_message) on_message(reader.Release(), outcome);
  }
  return outcomes;
}

// ---------------------------------------------------------------------------
// The service side.

std::map<std::string, Counter> Counters(FileRepository& store) {
  counterd::testing::Captured<counterd::Result<counterd::storage::CounterList>>
      listed;
  store.List(counterd::storage::ListRequest{"", "", 1u << 20}, listed);
  Require(listed.done() && listed.value().has_value());
  std::map<std::string, Counter> out;
  for (const Counter& c : listed.value()->counters) out[c.name] = c;
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

// Oracles 4 and 6: as the session serves |request| — authorised from its
// header first, then dispatched — one answer, not a 500, well-formed on the
// wire; a refusal changes nothing and shows no token. Returns false when
// the session would close the connection (a refusal).
bool Serve(const Request& request, FileRepository& store, ServerState& state,
           counterd::service::CounterService& service) {
  const counterd::http::RouteMatch match = counterd::http::MatchRoute(
      counterd::http::SplitTarget(request.target()).path);
  counterd::http::Authorizer::Decision auth =
      state.authorizer.Authorize(request, match);
  const bool is_head = request.method() == bhttp::verb::head;
  if (auth.refusal) {
    const std::uint64_t seq_before = store.Stats().last_seq;
    CheckRefusal(request, *auth.refusal);
    Require(store.Stats().last_seq == seq_before);
    auth.refusal->version(request.version());
    auth.refusal->keep_alive(false);
    PreparePayload(*auth.refusal, is_head);
    CheckWireFormat(*auth.refusal, is_head);
    return false;
  }
  const bool limited = auth.principal && auth.principal->is_limited();
  std::map<std::string, Counter> counters_before;
  if (limited) counters_before = Counters(store);
  const HandlerContext context{service, state.status, auth.principal.get()};
  Ready ready;
  Exchange exchange(ready);
  exchange.Start(request, counterd::http::Dispatch(request, match, context),
                 context);
  store.CommitPendingBatch();
  Require(ready.calls == 1);
  Response response = exchange.TakeResponse();
  if (limited) {
    CheckOnlyWritableChanged(counters_before, Counters(store), *auth.principal);
  }
  const unsigned status = response.result_int();
  Require(status >= 100 && status < 600 && status != 500);
  response.version(request.version());
  response.keep_alive(request.keep_alive());
  PreparePayload(response, is_head);
  CheckWireFormat(response, is_head);
  return true;
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
  const std::string_view input(reinterpret_cast<const char*>(bytes), size);
  ServerOptions options;
  options.version = "fuzz";
  options.hostname = "fuzz-0";
  if (MentionsAuthorization(input)) options.tokens = FuzzTokens();
  ServerState state(options, service);

  // The whole stream at once, serving each accepted request. |served| is
  // the store as the last accepted request left it.
  // After an authorisation refusal the session closes: later messages are
  // framed (oracles 1 and 3) but not served.
  auto served = std::make_pair(Counters(**store), std::uint64_t{0});
  bool open = true;
  const std::vector<Outcome> whole =
      Frame(input, input.size(), [&](Request request, const Outcome&) {
        if (!open) return;
        open = Serve(request, **store, state, service);
        served = {Counters(**store), (*store)->Stats().last_seq};
      });

  // Oracle 1: accepted exactly where the reference says the message ends.
  for (const Outcome& o : whole) {
    const ReferenceFraming ref = ReferenceMessageEnd(input.substr(o.start));
    switch (o.kind) {
      case Outcome::kMessage:
        Require(ref.kind == ReferenceFraming::kMessage);
        Require(o.start + ref.end == o.end);
        break;
      case Outcome::kIncomplete:  // never waits past a complete message
        Require(ref.kind != ReferenceFraming::kMessage);
        break;
      case Outcome::kRefused:  // stricter than the reference is fine
        break;
    }
  }
  // Oracle 2: a refusal ends the stream, and leaves the store as the last
  // accepted request left it.
  for (std::size_t i = 0; i + 1 < whole.size(); ++i) {
    Require(whole[i].kind == Outcome::kMessage);
  }
  if (!whole.empty() && whole.back().kind == Outcome::kRefused) {
    (*store)->CommitPendingBatch();
    Require(Counters(**store) == served.first &&
            (*store)->Stats().last_seq == served.second);
  }

  // Oracle 3: the same message boundaries when the bytes arrive in two
  // reads. How a stream that is refused or cut short ends may differ
  // (Beast defers parsing a partial header until its end arrives, so a bad
  // field can become a header-limit refusal or an incomplete message), but
  // not where any accepted message begins and ends.
  if (size > 1) {
    const std::size_t split = (static_cast<std::size_t>(bytes[0]) << 8 |
                               static_cast<std::size_t>(bytes[size - 1])) %
                              size;
    const std::vector<Outcome> pieces = Frame(input, split, nullptr);
    const auto messages = [](const std::vector<Outcome>& outcomes) {
      std::vector<std::pair<std::size_t, std::size_t>> out;
      for (const Outcome& o : outcomes) {
        if (o.kind == Outcome::kMessage) out.emplace_back(o.start, o.end);
      }
      return out;
    };
    Require(messages(pieces) == messages(whole));
  }

  // Oracle 5: what was acknowledged survives a compaction and a power loss.
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
