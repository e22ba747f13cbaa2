// An HTTP/1.1 "hello" server on weft's streams: answers every request with "Hello, world!\n",
// keeps connections alive, answers pipelined requests in order (one write per batch), and
// answers a request it cannot parse with 400 and closes. Requests are parsed by Boost.Beast's
// parser. Each connection is its own task (net/serve.h), so a silent or slow client holds up
// nobody else.
//
// Completion contract: serve_hello() runs until cancelled, then waits for its connections'
// cleanup (net/serve.h). Threading: inside a task, on the listener's loop thread.
#ifndef WEFT_EXAMPLES_HTTP_HELLO_SERVER_H_
#define WEFT_EXAMPLES_HTTP_HELLO_SERVER_H_

#include <string_view>

#include "weft/core/task.h"
#include "weft/net/listener.h"
#include "weft/net/stream.h"

namespace weft::http {

inline constexpr std::string_view kHelloBody = "Hello, world!\n";

// One connection: requests until the peer closes, asks to close, or sends garbage.
Task<void> hello_connection(net::Stream stream);
Task<void> serve_hello(net::Listener& listener);

}  // namespace weft::http

#endif  // WEFT_EXAMPLES_HTTP_HELLO_SERVER_H_
