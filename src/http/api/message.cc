#include "api/message.h"

#include <utility>

#include "api/content_type.h"
#include "api/json_codec.h"

namespace counterd::http {

Method MethodOf(bhttp::verb verb) {
  switch (verb) {
    case bhttp::verb::get:
      return Method::kGet;
    case bhttp::verb::head:
      return Method::kHead;
    case bhttp::verb::post:
      return Method::kPost;
    case bhttp::verb::put:
      return Method::kPut;
    case bhttp::verb::delete_:
      return Method::kDelete;
    default:
      return Method::kOther;
  }
}

Response MakeJsonResponse(bhttp::status status, std::string body) {
  Response res{status, 11};
  if (!body.empty()) {
    res.set(bhttp::field::content_type, kJsonType);
    res.body() = std::move(body);
  }
  return res;
}

Response MakeProblemResponse(const Problem& problem) {
  Response res{static_cast<bhttp::status>(problem.status), 11};
  res.set(bhttp::field::content_type, kProblemJsonType);
  res.body() = EncodeProblem(problem);
  return res;
}

void PreparePayload(Response& response, bool is_head) {
  // 204 and 304 carry no body and no Content-Length.
  if (response.result() == bhttp::status::no_content ||
      response.result() == bhttp::status::not_modified) {
    response.body().clear();
    response.erase(bhttp::field::content_length);
    return;
  }
  const std::size_t length = response.body().size();
  response.content_length(length);
  if (is_head) response.body().clear();
}

}  // namespace counterd::http
