// ReactorClock: the clock a reactor reads its time from (docs/time.md).
//
// A reactor made without one reads std::chrono::steady_clock directly (no object, no virtual
// call: the default costs nothing). A reactor made with one reads every "now" through it:
// call_later() deadlines, the due check of each turn, cancel-scope deadlines, sleep(). The
// backend's native timer keeps running on real time: the reactor asks the clock when, in
// steady_clock time, a deadline on it will have come (real_deadline()), and arms that; a clock
// that only moves when told to (virtual time, core/virtual_clock.h) answers "never" and moves
// itself when the loop would otherwise wait (on_idle()).
//
// A clock belongs to one reactor, which owns it (Reactor's constructor, make_reactor() in
// core/backend_registry.h, RunnerOptions::clock in runners/runner_registry.h).
//
// Threading: now() and real_deadline() are thread-safe; on_idle() and bind() are called by the
// reactor on its loop thread.
#ifndef WEFT_CORE_CLOCK_H_
#define WEFT_CORE_CLOCK_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "weft/core/time.h"

namespace weft {

class Reactor;

class ReactorClock {
 public:
  virtual ~ReactorClock() = default;

  // The current time on this clock. Never goes backwards. Thread-safe.
  virtual TimePoint now() const = 0;

  // The steady_clock time at or after which `deadline` (on this clock) will have come, for the
  // backend's native timer; TimePoint::max() if this clock never gets there by itself (it moves
  // only when told to). A native timer that fires early is harmless: the reactor re-checks
  // now() and re-arms. Thread-safe.
  virtual TimePoint real_deadline(TimePoint deadline) const = 0;

  // What the reactor tells the clock when its loop is about to wait: nothing is ready (no
  // queued callback, no cross-thread callback, no requested turn) and no stop is pending.
  struct IdleState {
    TimePoint next_deadline = TimePoint::max();  // the earliest timer; max(): none that fires
    // Nothing outside the loop can make work for it: no fd, signal or IoHandle is watched and
    // no cross-thread call is expected (Reactor::expect_call_from_thread()).
    bool quiet = false;
    std::size_t tasks = 0;  // spawned tasks not yet finished
  };
  enum class IdleAction {
    kWait,      // let the loop wait for the kernel as usual
    kRunDue,    // the clock moved: run the timers now due, then ask again
    kDeadlock,  // tasks wait with nothing that could ever wake them: fail them
  };
  // Loop thread. The default lets the loop wait (a clock that moves by itself).
  virtual IdleAction on_idle(const IdleState& state);

  // What the clock says in a deadlock error ("virtual time 12.5 s", ...).
  virtual std::string describe() const = 0;

 protected:
  // Wakes the reactor that owns this clock (if any yet) so that its loop asks on_idle() again:
  // for a clock told to move from another thread. Thread-safe.
  void wake_reactor() const;

 private:
  friend class Reactor;
  // Called once, by the reactor's constructor.
  void bind(Reactor& reactor) { reactor_ = &reactor; }
  Reactor* reactor_ = nullptr;
};

// The clocks make_clock() knows, for listings and errors: "steady" (the default, real time)
// and "virtual" (core/virtual_clock.h, autojumping).
std::vector<std::string> clock_names();
// Makes the clock named `name`; "" and "steady" give nullptr (the reactor reads steady_clock
// itself). Throws UnknownNameError, listing the names, for any other name.
std::unique_ptr<ReactorClock> make_clock(std::string_view name);

// The time on the clock of the reactor running on this thread (Reactor::current()), or
// steady_clock's when no reactor runs here. For deadlines computed before a reactor is known
// (cancel scopes' *_after helpers). Thread-safe.
TimePoint loop_time();

}  // namespace weft

#endif  // WEFT_CORE_CLOCK_H_
