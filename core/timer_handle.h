// TimerHandle: names a callback scheduled with Reactor::call_later / call_at,
// so it can be cancelled (Twisted's DelayedCall, asyncio's TimerHandle).
//
// A handle is a small value: copying it names the same timer; dropping it does
// not cancel. Threading: loop thread only, like the reactor that made it. A
// handle must not be used after its reactor is destroyed (as with Asio timers
// and their io_context).
#ifndef WEFT_CORE_TIMER_HANDLE_H_
#define WEFT_CORE_TIMER_HANDLE_H_

#include "weft/core/detail/timer_queue.h"
#include "weft/core/time.h"

namespace weft {

class Reactor;

class TimerHandle {
 public:
  TimerHandle() = default;

  // Prevents the callback from running. Returns true if this call prevented it;
  // false if it already ran (or is running), was already cancelled, or the
  // handle is empty. A timer that is due but has not run yet in the current
  // turn is still prevented.
  bool cancel();
  // True until the callback starts running or the timer is cancelled.
  bool pending() const;
  // The deadline of a pending timer (TimePoint::max() if it is not pending).
  TimePoint deadline() const;
  // Moves a pending timer to `when` (saturating; no allocation), keeping its callback; it then
  // runs after timers already due at `when`. Returns false, changing nothing, if the timer is
  // not pending. For a timer that re-arms itself after firing, see core/timer.h.
  bool reschedule(TimePoint when);

 private:
  friend class Reactor;
  friend class Timer;
  TimerHandle(Reactor* reactor, detail::TimerId id) : reactor_(reactor), id_(id) {}
  // Timer::start_after: reschedule() to `delay` from now (inside a callback, from its end, as
  // call_later does).
  bool reschedule_after(Duration delay);
  // Timer::stop: the timer stops being pending but keeps its slot in the reactor's heap for the
  // next start (TimerQueue::park); cancel() gives the slot back. True if it was pending.
  bool park();
  Reactor* reactor_ = nullptr;
  detail::TimerId id_;
};

}  // namespace weft

#endif  // WEFT_CORE_TIMER_HANDLE_H_
