// The libuv backend: a weft Reactor on a libuv loop (registered as "libuv").
//
// Maps: turns to a uv_idle_t (so the loop polls without blocking while weft has
// work), weft's timer heap to one timerfd watched by a uv_poll_t on Linux (libuv's
// own timers count whole milliseconds; WEFT_TIMER=native, or no timerfd: one
// uv_timer_t, see backends/detail/timer_fd.h), call_from_thread/stop to a
// uv_async_t, fd interest to one uv_poll_t per fd. Signals reach the reactor
// through its own pipe (core/detail/signal_fan_out.h), watched like any fd.
// Making a loop never ends the process: no descriptor left is a
// std::system_error (EMFILE), and the loop's descriptors stay above 2 even
// with standard streams closed (libuv asserts on closing 0-2). In a forked
// child, destroying an inherited reactor first calls uv_loop_fork(). See
// docs/backends/libuv.md.
//
// Adoption: adopt(loop) puts a reactor on a uv_loop_t the host application owns and runs with
// its own uv_run(); weft's callbacks and tasks then run inside it. An idle weft reactor does not
// keep the host's uv_run(UV_RUN_DEFAULT) alive (its wake-up handle is unreferenced); pending
// weft timers and watchers do, like any libuv handle.
//
// Threading: as Reactor. native_loop() is loop-thread only, and what you do
// with the loop must follow libuv's rules (one thread).
#ifndef WEFT_BACKENDS_LIBUV_LIBUV_BACKEND_H_
#define WEFT_BACKENDS_LIBUV_LIBUV_BACKEND_H_

#include <uv.h>

#include <memory>

#include "weft/core/reactor.h"

namespace weft::libuv {

// The uv_loop_t under a reactor made on the "libuv" backend, for handles of
// your own. Throws UsageError if `reactor` runs on another backend.
uv_loop_t* native_loop(Reactor& reactor);

// A reactor on `loop`, which the host owns, runs and eventually closes; `loop` must outlive
// the reactor. Destroying the reactor closes weft's handles; libuv runs their close callbacks
// (which free them) in the host's next loop iteration, after which the loop holds nothing of
// weft's and uv_loop_close() succeeds. Host thread.
std::unique_ptr<Reactor> adopt(uv_loop_t* loop);

}  // namespace weft::libuv

#endif  // WEFT_BACKENDS_LIBUV_LIBUV_BACKEND_H_
