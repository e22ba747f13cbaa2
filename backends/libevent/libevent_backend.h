// The libevent backend: a weft Reactor on a libevent 2.1 event_base (registered as "libevent",
// libevent's own choice of method, and as "libevent:<method>" for each method this machine
// supports: "libevent:epoll", "libevent:poll", "libevent:select", ...).
//
// Maps: turns to one zero-timeout timer event (so a turn always runs in the next iteration,
// after a poll that does not block), cross-thread wake-ups to an eventfd of weft's watched by a
// read event (weft's own base is made with EVENT_BASE_FLAG_NOLOCK; on an adopted base, to the
// turn's timer added from the other thread), weft's timer heap to one timerfd
// watched by a read event on Linux, on every method (libevent's own clock is coarse; with
// WEFT_TIMER=native, or no timerfd: one timer event, see backends/detail/timer_fd.h), fd
// interest to one persistent read and/or write event per fd. Signals reach the reactor through
// its own pipe (core/detail/signal_fan_out.h), watched like any fd; no libevent signal event is
// used (libevent hands a signal to one event_base only).
//
// Limits: libevent calls exit(1) when it cannot open a descriptor while making a base, so the
// backend checks that the descriptors it needs are free first and throws std::system_error
// (EMFILE) if not; nothing is probed before main(). The select method refuses fds at or above
// FD_SETSIZE (std::system_error, ERANGE) instead of letting glibc abort. In a forked child,
// destroying an inherited reactor first calls event_reinit(). See docs/backends/libevent.md.
//
// Adoption: adopt(base) puts a reactor on an event_base the host application created, owns and
// runs with its own event_base_dispatch()/event_base_loop(); weft's callbacks and tasks then run
// inside it. An idle weft reactor adds no event to the base, so it does not keep the host's
// event_base_dispatch() running; pending weft timers, turns and watchers do, like any event.
//
// Threading: as Reactor. This file enables libevent's pthreads locking (evthread_use_pthreads)
// at static initialization: a base the host adopts must be made after that (i.e. from main) and
// without EVENT_BASE_FLAG_NOLOCK, or call_from_thread() and stop() from other threads are not
// safe. native_base() is loop-thread only, and what you do with the base must follow libevent's
// rules; weft's own base has no lock, so no libevent call on it is thread-safe.
#ifndef WEFT_BACKENDS_LIBEVENT_LIBEVENT_BACKEND_H_
#define WEFT_BACKENDS_LIBEVENT_LIBEVENT_BACKEND_H_

#include <event2/event.h>

#include <memory>

#include "weft/core/reactor.h"

namespace weft::libevent {

// The event_base under a reactor made on a libevent backend, for events of your own (free them
// before the reactor is destroyed: an owned base is freed with it). Throws UsageError if
// `reactor` runs on another backend.
event_base* native_base(Reactor& reactor);

// A reactor (named "libevent") on `base`, which the host created, runs and eventually frees;
// `base` must outlive the reactor. Destroying the reactor deletes and frees every event weft
// added to the base and leaves it usable. Reactor::run() and run_once() still work: they run
// the host's base on the calling thread. Host thread.
std::unique_ptr<Reactor> adopt(event_base* base);

}  // namespace weft::libevent

#endif  // WEFT_BACKENDS_LIBEVENT_LIBEVENT_BACKEND_H_
