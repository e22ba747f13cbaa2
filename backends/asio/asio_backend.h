// The Boost.Asio backend: a weft Reactor on a boost::asio::io_context (registered as "asio").
//
// Maps: turns and cross-thread wake-ups to handlers posted to the context (one of each queued at
// a time), weft's timer heap to one steady_timer, fd interest to one posix::stream_descriptor
// per fd (released, never closed: the fd is weft's). Signals reach the reactor through its own
// pipe (core/detail/signal_fan_out.h), watched like any fd. Asio's errors come out as
// std::system_error, as the Backend contract says (never boost::system::system_error). In a
// forked child, destroying an inherited reactor first calls notify_fork(fork_child). See
// docs/backends/asio.md.
//
// Adoption: adopt(context) puts a reactor on an io_context the host application owns and runs
// with its own context.run(); weft's callbacks and tasks then run inside it. weft holds no work
// guard on a host's context (only while Reactor::run() or run_once() drives it), so an idle weft
// reactor does not keep the host's run() from returning; pending weft timers and watchers do,
// like any outstanding Asio operation.
//
// Threading: as Reactor. The io_context must be run by one thread at a time, the reactor's loop
// thread. native_context() is loop-thread only.
#ifndef WEFT_BACKENDS_ASIO_ASIO_BACKEND_H_
#define WEFT_BACKENDS_ASIO_ASIO_BACKEND_H_

#include <boost/asio/io_context.hpp>
#include <memory>

#include "weft/core/reactor.h"

namespace weft::asio {

// The io_context under a reactor made on the "asio" backend (owned or adopted), for I/O objects
// of your own; their handlers run in the reactor's loop iterations. Throws UsageError if
// `reactor` runs on another backend.
boost::asio::io_context& native_context(Reactor& reactor);

// A reactor on `context`, which the host owns and runs (context.run() on one thread); `context`
// must outlive the reactor. Destroying the reactor cancels weft's operations on the context; the
// handlers it leaves queued do nothing when the host's loop runs or destroys them, and the
// context stays usable. Reactor::run() and run_once() also work: they drive the host's context
// on the calling thread, which must then be the only one running it. Host thread.
std::unique_ptr<Reactor> adopt(boost::asio::io_context& context);

}  // namespace weft::asio

#endif  // WEFT_BACKENDS_ASIO_ASIO_BACKEND_H_
