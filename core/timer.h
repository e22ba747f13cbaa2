// Timer: a re-armable timer that owns its callback (libuv's uv_timer_t, Asio's steady_timer),
// for code that arms the same timeout again and again (idle timeouts, keep-alives, retries).
//
// start_after()/start_at() arm it, replacing any earlier arming; arming a pending or stopped
// timer moves it in the reactor's heap (a stopped one keeps its slot there until it is started
// again or destroyed) and arming a fired one reuses a free slot, so re-arming allocates nothing
// once the reactor has warmed up. The callback runs once per arming, on the loop
// thread, under the same rules as Reactor::call_later (never early, never inside the call
// that armed it); it may re-arm the timer. Destroying the timer cancels it.
//
// Threading: loop thread only. Lifetime: must not outlive its reactor; not movable (the
// reactor's heap holds a pointer to it while it is armed).
#ifndef WEFT_CORE_TIMER_H_
#define WEFT_CORE_TIMER_H_

#include <concepts>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "weft/core/time.h"
#include "weft/core/timer_handle.h"

namespace weft {

class Reactor;

class Timer {
 public:
  using Callback = absl::AnyInvocable<void()>;

  // `callback`: anything a Callback is made from, made in place (no Callback moved).
  template <typename F>
  Timer(Reactor& reactor, F&& callback) requires std::constructible_from<Callback, F&&>
      : reactor_(&reactor), callback_(std::forward<F>(callback)) {}
  ~Timer() { handle_.cancel(); }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Arms the timer `delay` from now (a negative delay counts as zero; Duration::max() never
  // fires), or at `when`.
  void start_after(Duration delay);
  void start_at(TimePoint when);
  // Disarms it; true if it was armed. The timer keeps its place in the reactor's heap, so
  // starting it again takes no new slot (as a stopped uv_timer_t keeps its handle).
  bool stop() { return handle_.park(); }
  bool pending() const { return handle_.pending(); }
  // The armed deadline, or TimePoint::max() when not armed.
  TimePoint deadline() const { return handle_.deadline(); }

 private:
  Reactor* reactor_;
  Callback callback_;
  TimerHandle handle_;
};

}  // namespace weft

#endif  // WEFT_CORE_TIMER_H_
