// serve(): accepts connections forever, each handled by its own task.
//
//   co_await weft::net::serve(listener, [](weft::net::Stream stream) -> weft::Task<void> {
//     co_await stream.write_all("hello\n");
//   });
//
// Each accepted stream is handed to `handler` in a task of its own (spawned on the same reactor),
// so a slow connection never holds up the others. When accept() fails because the process or
// the system is out of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM), serve() waits
// kAcceptBackoff (100 ms) and tries again, instead of spinning on the same error or giving up;
// other accept errors end serve() with that error. An exception escaping a handler goes to the
// reactor's error handler, naming the peer; it does not stop serve().
//
// Completion contract: serve() runs until cancelled (or a fatal accept error); then it cancels
// every connection task it started and completes (with weft::Cancelled, or the accept error)
// once each of them has finished its cleanup, like a trio nursery. The listener stays open;
// close it afterwards if done with it. The handler's captures must outlive serve() (they do if
// the handler captures nothing, or only what outlives the serve() call).
//
// Threading: inside a task, on the listener's loop thread.
#ifndef WEFT_NET_SERVE_H_
#define WEFT_NET_SERVE_H_

#include <functional>

#include "weft/core/task.h"
#include "weft/core/time.h"
#include "weft/net/listener.h"
#include "weft/net/stream.h"

namespace weft::net {

inline constexpr Duration kAcceptBackoff = std::chrono::milliseconds(100);

using ConnectionHandler = std::function<Task<void>(Stream)>;

Task<void> serve(Listener& listener, ConnectionHandler handler);

}  // namespace weft::net

#endif  // WEFT_NET_SERVE_H_
