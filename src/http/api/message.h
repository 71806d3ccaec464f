// The HTTP message types handlers and sessions exchange, and the helpers
// that build responses. Pure functions; thread-safe.
#ifndef COUNTERD_HTTP_API_MESSAGE_H_
#define COUNTERD_HTTP_API_MESSAGE_H_

#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>

#include "api/problem.h"
#include "api/router.h"

namespace counterd::http {

namespace bhttp = boost::beast::http;

using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;

Method MethodOf(bhttp::verb verb);

// A 2xx/3xx response with a JSON body (or none if |body| is empty).
Response MakeJsonResponse(bhttp::status status, std::string body);
// An application/problem+json response for |problem|.
Response MakeProblemResponse(const Problem& problem);

// Sets Content-Length from the body, then drops the body of a response to
// HEAD while keeping the Content-Length a GET would have had.
void PreparePayload(Response& response, bool is_head);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_API_MESSAGE_H_
