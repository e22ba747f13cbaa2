#include "examples/http/hello_server.h"

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "weft/net/serve.h"

namespace weft::http {

namespace beast_http = boost::beast::http;

namespace {

constexpr std::size_t kMaxHeader = 16 * 1024;
constexpr std::size_t kMaxBody = 1 << 20;

std::string hello_response(bool keep_alive) {
  std::string response =
      "HTTP/1.1 200 OK\r\nServer: weft\r\nContent-Type: text/plain\r\nContent-Length: ";
  response += std::to_string(kHelloBody.size());
  response += keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
  response += kHelloBody;
  return response;
}

constexpr std::string_view kBadRequest =
    "HTTP/1.1 400 Bad Request\r\nServer: weft\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

// One connection's requests and responses.
Task<void> converse(net::Stream& stream) {
  std::vector<char> buffer(16 * 1024);
  std::string input;  // received, not yet parsed
  std::string output;
  bool open = true;
  while (open) {
    const std::size_t n = co_await stream.read_some(std::span(buffer));
    if (n == 0) break;  // the client closed (possibly halfway through a request)
    input.append(buffer.data(), n);
    // Every complete request in what arrived (pipelining), answered in one write.
    output.clear();
    for (;;) {
      std::optional<beast_http::request_parser<beast_http::string_body>> parser;
      parser.emplace();
      parser->header_limit(kMaxHeader);
      parser->body_limit(kMaxBody);
      parser->eager(true);
      boost::beast::error_code ec;
      const std::size_t used = parser->put(boost::asio::buffer(input), ec);
      if (ec == beast_http::error::need_more || (!ec && !parser->is_done())) {
        if (input.size() > kMaxHeader + kMaxBody) {
          output += kBadRequest;
          open = false;
        }
        break;  // wait for the rest of this request
      }
      if (ec) {
        output += kBadRequest;
        open = false;
        break;
      }
      input.erase(0, used);
      const bool keep_alive = parser->get().keep_alive();
      output += hello_response(keep_alive);
      if (!keep_alive) {
        open = false;
        break;
      }
      if (input.empty()) break;
    }
    if (!output.empty()) co_await stream.write_all(output);
  }
  if (stream.is_open()) stream.shutdown_write();
}

}  // namespace

Task<void> hello_connection(net::Stream stream) {
  try {
    co_await converse(stream);
  } catch (const std::system_error& e) {
    // A client that resets the connection (wrk at the end of a run, a browser closing a tab)
    // is not an error worth reporting.
    if (e.code() != std::errc::connection_reset && e.code() != std::errc::broken_pipe) throw;
  }
}

Task<void> serve_hello(net::Listener& listener) { co_await net::serve(listener, hello_connection); }

}  // namespace weft::http
