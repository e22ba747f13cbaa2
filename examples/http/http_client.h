// A small HTTP/1.1 client on weft's streams, for the examples and `weft get`: one GET per
// connection, the response parsed by Boost.Beast's parser (chunked and Content-Length bodies,
// any size), no TLS.
//
//   weft::http::Response response = co_await weft::http::get(*weft::http::Url::parse(url));
//
// Completion contract: get() completes once with the whole response, or throws: std::system_error
// for network failures (refused, reset, timeout: net/connect.h), std::runtime_error for a
// response that is not valid HTTP. Cancelling it closes the connection.
//
// Threading: inside a task, on its reactor's loop thread.
#ifndef WEFT_EXAMPLES_HTTP_HTTP_CLIENT_H_
#define WEFT_EXAMPLES_HTTP_HTTP_CLIENT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "weft/core/task.h"
#include "weft/core/time.h"

namespace weft::http {

struct Url {
  std::string host;  // as written, without brackets for IPv6
  std::uint16_t port = 80;
  std::string target = "/";  // path and query
  // "http://host[:port][/path]"; nullopt otherwise (https is not supported).
  static std::optional<Url> parse(std::string_view text);
};

struct Response {
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool chunked = false;  // the body came with Transfer-Encoding: chunked
  std::string header(std::string_view name) const;
};

struct GetOptions {
  Duration connect_timeout = std::chrono::seconds(10);
};

Task<Response> get(Url url, GetOptions options = {});

}  // namespace weft::http

#endif  // WEFT_EXAMPLES_HTTP_HTTP_CLIENT_H_
