// The libuv backend: a weft Reactor on a libuv loop (registered as "libuv").
//
// Maps: turns to a uv_idle_t (so the loop polls without blocking while weft has
// work), weft's timer heap to one uv_timer_t, call_from_thread/stop to a
// uv_async_t, fd interest to one uv_poll_t per fd, signals to uv_signal_t
// (libuv delivers a signal to every loop watching it). See docs/backends.md.
//
// Threading: as Reactor. native_loop() is loop-thread only, and what you do
// with the loop must follow libuv's rules (one thread).
#ifndef WEFT_BACKENDS_LIBUV_LIBUV_BACKEND_H_
#define WEFT_BACKENDS_LIBUV_LIBUV_BACKEND_H_

#include <uv.h>

#include "core/reactor.h"

namespace weft::libuv {

// The uv_loop_t under a reactor made on the "libuv" backend, for handles of
// your own. Throws UsageError if `reactor` runs on another backend.
uv_loop_t* native_loop(Reactor& reactor);

}  // namespace weft::libuv

#endif  // WEFT_BACKENDS_LIBUV_LIBUV_BACKEND_H_
