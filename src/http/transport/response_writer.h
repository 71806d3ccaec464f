// Serializes responses into one flat string, the bytes Beast's serializer
// would produce, so a response goes out with a single write of one buffer
// instead of Beast's buffer-sequence machinery.
//
// Only for what the session sends: a body that is sent as is (no chunked
// Transfer-Encoding; PreparePayload always sets Content-Length or, for
// 204/304, no body). Pure functions; thread-safe.
#ifndef COUNTERD_HTTP_TRANSPORT_RESPONSE_WRITER_H_
#define COUNTERD_HTTP_TRANSPORT_RESPONSE_WRITER_H_

#include <string>
#include <string_view>

#include "api/message.h"

namespace counterd::http {

// Replaces |out|'s contents with |response| on the wire: the status line
// (response.version(), the code, response.reason()), a "Date: |date|"
// field unless |date| is empty, each field in order, a blank line and the
// body. Reuses |out|'s capacity. With an empty |date| the bytes are
// Beast's serializer's. REQUIRES: |response| has no Date field of its own.
void WriteResponse(const Response& response, std::string_view date,
                   std::string& out);

// Replaces |out|'s contents with an interim "100 Continue" response in
// HTTP version |version| (11 for HTTP/1.1), as Beast would serialize
// response<empty_body>{status::continue_, version}.
void WriteContinue(unsigned version, std::string& out);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_TRANSPORT_RESPONSE_WRITER_H_
