// The tokens file (--auth-tokens-file): JSON to TokenSet. One of the codec
// files allowed to include nlohmann/json (scripts/check-layers); every
// exception it throws is caught here and becomes kInvalidArgument.
//
//   {"tokens": [
//     {"name": "billing", "sha256": "<64 lowercase hex>",
//      "scopes": ["read", "write"], "prefixes": ["billing:"]}, ...]}
//
// Strict on purpose: an unknown field is an error rather than ignored, so a
// typo such as "prefix" for "prefixes" cannot silently widen a token to
// every counter; so are duplicate keys (nlohmann would keep the last).
#include <cstddef>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/principal.h"
#include "auth/digest.h"
#include "auth/token_set.h"
#include "counterd/domain/counter_name.h"
#include "counterd/http/auth.h"

namespace counterd::http {
namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaxNameLength = 64;

bool IsTokenNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool IsTokenName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (const char c : name) {
    if (!IsTokenNameChar(c)) return false;
  }
  return true;
}

bool IsCounterPrefix(std::string_view prefix) {
  if (prefix.empty() || prefix.size() > domain::CounterName::kMaxLength) {
    return false;
  }
  for (const char c : prefix) {
    if (!domain::IsCounterNameChar(c)) return false;
  }
  return true;
}

// A value from the file for a message: JSON-quoted, cut at 40 characters,
// so a message stays one printable line whatever the file holds.
std::string Quote(const Json& value) {
  std::string text = value.dump(-1, ' ', /*ensure_ascii=*/true,
                                Json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

// nlohmann prefixes its messages with "[json.exception.parse_error.101] ".
std::string WithoutExceptionId(std::string_view what) {
  if (!what.empty() && what.front() == '[') {
    const std::size_t end = what.find("] ");
    if (end != std::string_view::npos) what.remove_prefix(end + 2);
  }
  return std::string(what);
}

// Builds the one-line errors: "PATH: tokens[2] (name "ops"): reason".
class Errors {
 public:
  explicit Errors(std::string_view path) : path_(path) {}

  Status File(std::string_view reason) const {
    return Status::InvalidArgument(path_ + ": " + std::string(reason));
  }
  Status Entry(std::size_t index, const std::string& name,
               std::string_view reason) const {
    std::string where = path_ + ": tokens[" + std::to_string(index) + "]";
    if (!name.empty()) where += " (name \"" + name + "\")";
    return Status::InvalidArgument(where + ": " + std::string(reason));
  }

 private:
  std::string path_;
};

// Reads an array of distinct strings into |out|; |what| names the field.
// Returns the reason it is not one, or "".
std::string ReadStrings(const Json& value, std::string_view what,
                        std::vector<std::string>& out) {
  if (!value.is_array()) {
    return std::string(what) + " must be an array of strings, not " +
           Quote(value);
  }
  if (value.empty()) return std::string(what) + " is empty";
  std::set<std::string> seen;
  for (const Json& item : value) {
    if (!item.is_string()) {
      return std::string(what) + " must be an array of strings, not " +
             Quote(value);
    }
    std::string s = item.get<std::string>();
    if (!seen.insert(s).second) {
      return std::string(what) + " lists " + Quote(item) + " twice";
    }
    out.push_back(std::move(s));
  }
  return "";
}

struct Seen {
  std::set<std::string> names;
  std::vector<std::pair<Digest, std::string>> digests;  // with the name
};

// The "name" of entry |index|, once it is valid, the entry has no unknown
// field and no earlier entry has the name (it is added to |seen|).
Result<std::string> DecodeName(const Errors& errors, std::size_t index,
                               const Json& j, Seen& seen) {
  const auto name_it = j.find("name");
  if (name_it == j.end()) return errors.Entry(index, "", "\"name\" is missing");
  if (!name_it->is_string() || !IsTokenName(name_it->get<std::string>())) {
    return errors.Entry(index, "",
                        "\"name\" must be 1 to 64 of A-Z a-z 0-9 . _ -, not " +
                            Quote(*name_it));
  }
  std::string name = name_it->get<std::string>();
  for (const auto& [key, value] : j.items()) {
    if (key != "name" && key != "sha256" && key != "scopes" &&
        key != "prefixes") {
      return errors.Entry(index, name,
                          "unknown field " + Quote(Json(key)) +
                              " (allowed: name, sha256, scopes, prefixes)");
    }
  }
  if (!seen.names.insert(name).second) {
    return errors.Entry(index, name, "the name is used by an earlier entry");
  }
  return name;
}

// The "sha256" of the entry, once no earlier entry has it (it is added to
// |seen|).
Result<Digest> DecodeDigest(const Errors& errors, std::size_t index,
                            const std::string& name, const Json& j,
                            Seen& seen) {
  const auto sha_it = j.find("sha256");
  if (sha_it == j.end()) {
    return errors.Entry(
        index, name, "\"sha256\" is missing (counterd hash-token prints it)");
  }
  std::optional<Digest> digest;
  if (sha_it->is_string()) digest = ParseHexDigest(sha_it->get<std::string>());
  if (!digest) {
    // Not quoted back: a wrong value here might be a token pasted by
    // mistake, which must not reach a log.
    return errors.Entry(index, name,
                        "\"sha256\" must be exactly 64 lowercase hex digits "
                        "(the output of counterd hash-token)");
  }
  for (const auto& [other, other_name] : seen.digests) {
    if (DigestsEqual(other, *digest)) {
      return errors.Entry(index, name,
                          "\"sha256\" is the same as that of \"" + other_name +
                              "\": one token cannot stand for two entries");
    }
  }
  seen.digests.emplace_back(*digest, name);
  return *digest;
}

// The "scopes" of the entry (required).
Result<std::vector<Scope>> DecodeScopes(const Errors& errors, std::size_t index,
                                        const std::string& name,
                                        const Json& j) {
  const auto scopes_it = j.find("scopes");
  if (scopes_it == j.end()) {
    return errors.Entry(index, name,
                        "\"scopes\" is missing (any of read, write, metrics, "
                        "admin)");
  }
  std::vector<std::string> scope_names;
  if (std::string why = ReadStrings(*scopes_it, "\"scopes\"", scope_names);
      !why.empty()) {
    return errors.Entry(index, name, why);
  }
  std::vector<Scope> scopes;
  for (const std::string& s : scope_names) {
    const std::optional<Scope> scope = ParseScope(s);
    if (!scope) {
      return errors.Entry(index, name,
                          "unknown scope " + Quote(Json(s)) +
                              " (known: read, write, metrics, admin)");
    }
    scopes.push_back(*scope);
  }
  return scopes;
}

// The "prefixes" of the entry; none (every counter) when it is left out.
Result<std::vector<std::string>> DecodePrefixes(const Errors& errors,
                                                std::size_t index,
                                                const std::string& name,
                                                const Json& j) {
  std::vector<std::string> prefixes;
  const auto it = j.find("prefixes");
  if (it == j.end()) return prefixes;
  if (std::string why = ReadStrings(*it, "\"prefixes\"", prefixes);
      !why.empty()) {
    if (it->is_array() && it->empty()) {
      why += " (leave \"prefixes\" out for every counter)";
    }
    return errors.Entry(index, name, why);
  }
  for (const std::string& p : prefixes) {
    if (!IsCounterPrefix(p)) {
      return errors.Entry(index, name,
                          "prefix " + Quote(Json(p)) +
                              " is not 1 to 128 of the counter-name "
                              "characters A-Z a-z 0-9 . _ - :");
    }
  }
  return prefixes;
}

// One entry of "tokens"; adds it to |entries| or returns the error.
Status DecodeEntry(const Errors& errors, std::size_t index, const Json& j,
                   Seen& seen, std::vector<TokenSet::Entry>& entries) {
  if (!j.is_object()) {
    return errors.Entry(index, "", "must be an object, not " + Quote(j));
  }
  // The name first, so that every later message can say which token.
  Result<std::string> name = DecodeName(errors, index, j, seen);
  if (!name) return name.error();
  Result<Digest> digest = DecodeDigest(errors, index, *name, j, seen);
  if (!digest) return digest.error();
  Result<std::vector<Scope>> scopes = DecodeScopes(errors, index, *name, j);
  if (!scopes) return scopes.error();
  Result<std::vector<std::string>> prefixes =
      DecodePrefixes(errors, index, *name, j);
  if (!prefixes) return prefixes.error();
  entries.push_back(TokenSet::Entry{
      *digest, Principal(*name, *scopes, std::move(*prefixes))});
  return Status::Ok();
}

// The first key that appears twice in one object, if any (nlohmann keeps
// the last silently). Records the entry index it was found in.
struct DuplicateKeyFinder {
  std::vector<std::set<std::string>> open_objects;
  std::size_t entries_started = 0;
  std::optional<std::string> duplicate;
  bool in_entry = false;  // the duplicate is inside tokens[entries_started-1]

  bool operator()(int depth, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        // Depth 0 is the top object, 1 the "tokens" array, 2 its entries.
        if (depth == 2) ++entries_started;
        open_objects.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!duplicate && !open_objects.empty() && parsed.is_string() &&
            !open_objects.back().insert(parsed.get<std::string>()).second) {
          duplicate = parsed.get<std::string>();
          in_entry = depth == 3;
        }
        break;
      default:
        break;
    }
    return true;
  }
};

Result<std::shared_ptr<const TokenSet>> Decode(const Errors& errors,
                                               std::string_view text) {
  DuplicateKeyFinder finder;
  Json root;
  try {
    root = Json::parse(text, std::ref(finder));
  } catch (const Json::exception& e) {
    return errors.File("not valid JSON: " + WithoutExceptionId(e.what()));
  }
  if (finder.duplicate) {
    const std::string key = Quote(Json(*finder.duplicate));
    if (finder.in_entry) {
      return errors.Entry(finder.entries_started - 1, "",
                          "the key " + key + " appears twice");
    }
    return errors.File("the key " + key + " appears twice in one object");
  }
  if (!root.is_object() || !root.contains("tokens")) {
    return errors.File("expected an object {\"tokens\": [...]}");
  }
  for (const auto& [key, value] : root.items()) {
    if (key != "tokens") {
      return errors.File("unknown top-level field " + Quote(Json(key)) +
                         " (only \"tokens\" is allowed)");
    }
  }
  const Json& list = root["tokens"];
  if (!list.is_array()) {
    return errors.File("\"tokens\" must be an array, not " + Quote(list));
  }
  if (list.empty()) {
    return errors.File(
        "\"tokens\" is empty: every request would be refused (to turn "
        "authentication off, start without --auth-tokens-file)");
  }
  Seen seen;
  std::vector<TokenSet::Entry> entries;
  for (std::size_t i = 0; i < list.size(); ++i) {
    COUNTERD_RETURN_IF_ERROR(DecodeEntry(errors, i, list[i], seen, entries));
  }
  return std::make_shared<const TokenSet>(std::move(entries));
}

}  // namespace

Result<std::shared_ptr<const TokenSet>> ParseTokenFile(std::string_view path,
                                                       std::string_view text) {
  const Errors errors(path);
  try {
    return Decode(errors, text);
  } catch (const std::exception& e) {  // nlohmann type_error: a bug here
    return errors.File(std::string("cannot read: ") + e.what());
  }
}

}  // namespace counterd::http
