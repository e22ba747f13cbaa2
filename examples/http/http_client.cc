#include "examples/http/http_client.h"

#include <strings.h>
#include <array>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <charconv>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "weft/net/connect.h"
#include "weft/net/stream.h"

namespace weft::http {

namespace beast_http = boost::beast::http;

std::optional<Url> Url::parse(std::string_view text) {
  constexpr std::string_view kScheme = "http://";
  if (text.size() < kScheme.size() ||
      strncasecmp(text.data(), kScheme.data(), kScheme.size()) != 0) {
    return std::nullopt;
  }
  text.remove_prefix(kScheme.size());
  const std::size_t slash = text.find_first_of("/?");
  std::string_view authority = text.substr(0, slash);
  Url url;
  url.target = slash == std::string_view::npos ? "/" : std::string(text.substr(slash));
  if (url.target.starts_with('?')) url.target = "/" + url.target;
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  std::string_view port_text;
  if (authority.starts_with('[')) {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return std::nullopt;
      port_text = rest.substr(1);
    }
  } else {
    const std::size_t colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (url.host.empty()) return std::nullopt;
  if (!port_text.empty() || authority.ends_with(':')) {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return std::nullopt;
    }
    url.port = static_cast<std::uint16_t>(port);
  }
  return url;
}

std::string Response::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() && strncasecmp(key.data(), name.data(), name.size()) == 0) {
      return value;
    }
  }
  return "";
}

Task<Response> get(Url url, GetOptions options) {
  net::ConnectOptions connect_options;
  connect_options.timeout = options.connect_timeout;
  net::Stream stream = co_await net::connect(url.host, url.port, connect_options);
  const std::string host_header =
      url.host.find(':') != std::string::npos ? absl::StrCat("[", url.host, "]") : url.host;
  // StrCat, not operator+: GCC 12 at -O3 reports a false -Wrestrict on the latter.
  std::string request = absl::StrCat("GET ", url.target, " HTTP/1.1\r\nHost: ", host_header);
  if (url.port != 80) absl::StrAppend(&request, ":", url.port);
  absl::StrAppend(&request, "\r\nUser-Agent: weft\r\nAccept: */*\r\nConnection: close\r\n\r\n");
  co_await stream.write_all(request);
  beast_http::response_parser<beast_http::string_body> parser;
  parser.body_limit(boost::none);  // files of any size
  parser.eager(true);
  std::vector<char> buffer(64 * 1024);
  std::string pending;  // bytes the parser has not consumed yet
  bool eof = false;
  while (!parser.is_done()) {
    if (!eof) {
      const std::size_t n = co_await stream.read_some(std::span(buffer));
      if (n == 0) {
        eof = true;
      } else {
        pending.append(buffer.data(), n);
      }
    }
    boost::beast::error_code ec;
    if (!pending.empty()) {
      const std::size_t used = parser.put(boost::asio::buffer(pending), ec);
      pending.erase(0, used);
      if (ec == beast_http::error::need_more) ec = {};
    }
    if (ec)
      throw std::runtime_error(
          absl::StrCat("weft: bad HTTP response from ", url.host, ": ", ec.message()));
    if (eof && !parser.is_done()) {
      parser.put_eof(ec);
      if (ec) {
        throw std::runtime_error(
            absl::StrCat("weft: HTTP response from ", url.host, " ended early: ", ec.message()));
      }
      break;
    }
  }
  auto message = parser.release();
  Response response;
  response.status = static_cast<int>(message.result_int());
  response.reason = std::string(message.reason());
  response.chunked = message.chunked();
  for (const auto& field : message) {
    response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  response.body = std::move(message.body());
  co_return response;
}

}  // namespace weft::http
