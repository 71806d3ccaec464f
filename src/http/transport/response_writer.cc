#include "transport/response_writer.h"

#include <cstdio>
#include <string_view>

namespace counterd::http {
namespace {

// "HTTP/X.Y ### <reason>\r\n", digit for digit as basic_fields::writer.
void AppendStatusLine(unsigned version, unsigned code, std::string_view reason,
                      std::string& out) {
  char head[] = "HTTP/X.Y ### ";
  head[5] = static_cast<char>('0' + version / 10);
  head[7] = static_cast<char>('0' + version % 10);
  head[9] = static_cast<char>('0' + code / 100);
  head[10] = static_cast<char>('0' + (code / 10) % 10);
  head[11] = static_cast<char>('0' + code % 10);
  out.append(head, sizeof(head) - 1);
  out.append(reason);
  out.append("\r\n");
}

}  // namespace

void WriteResponse(const Response& response, std::string_view date,
                   std::string& out) {
  out.clear();
  AppendStatusLine(response.version(), response.result_int(), response.reason(),
                   out);
  if (!date.empty()) {
    out.append("Date: ");
    out.append(date);
    out.append("\r\n");
  }
  for (const auto& field : response) {
    out.append(field.name_string());
    out.append(": ");
    out.append(field.value());
    out.append("\r\n");
  }
  out.append("\r\n");
  out.append(response.body());
}

void WriteChunk(std::string_view data, std::string& out) {
  char size[20];
  const int n = std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  out.assign(size, static_cast<std::size_t>(n));
  out.append(data);
  out.append("\r\n");
}

void WriteLastChunk(std::string& out) { out.assign("0\r\n\r\n"); }

void WriteContinue(unsigned version, std::string& out) {
  out.clear();
  AppendStatusLine(version, 100,
                   bhttp::obsolete_reason(bhttp::status::continue_), out);
  out.append("\r\n");
}

}  // namespace counterd::http
