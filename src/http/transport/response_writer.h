// Serializes responses into one flat string, the bytes Beast's serializer
// would produce, so a response goes out with a single write of one buffer
// instead of Beast's buffer-sequence machinery.
//
// Only for what the session sends: WriteResponse writes a body as is (no
// chunked coding: PreparePayload sets Content-Length or, for 204/304, no
// body); a streamed body follows its head as WriteChunk pieces. Pure
// functions; thread-safe.
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

// Replaces |out|'s contents with |data| as one chunk of a chunked body
// (RFC 9112 section 7.1: the size in hex, CRLF, the data, CRLF).
// REQUIRES: |data| is not empty (an empty chunk ends the body).
void WriteChunk(std::string_view data, std::string& out);
// Replaces |out|'s contents with the last chunk of a chunked body (no
// trailer fields).
void WriteLastChunk(std::string& out);

// Replaces |out|'s contents with an interim "100 Continue" response in
// HTTP version |version| (11 for HTTP/1.1), as Beast would serialize
// response<empty_body>{status::continue_, version}.
void WriteContinue(unsigned version, std::string& out);

}  // namespace counterd::http

#endif  // COUNTERD_HTTP_TRANSPORT_RESPONSE_WRITER_H_
