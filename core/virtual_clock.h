// VirtualClock: time that moves only when told to, for testing time-dependent code exactly and
// instantly (Twisted's task.Clock, trio's MockClock, tokio's paused time; docs/time.md).
//
// A reactor made on a VirtualClock runs on any backend as usual (fds, signals and cross-thread
// calls are real), but its timers, sleep(), cancel-scope deadlines and now() follow the virtual
// clock. Time moves in two ways, both only while the loop runs and has nothing else to do
// (nothing queued, nothing from another thread), never in the middle of a turn:
//
// * advance(d) / jump_to(t): time walks to the target through every timer deadline on the way.
//   Each timer runs with now() equal to its own deadline, and what it schedules (call_soon, a
//   shorter timer) runs in later turns before time moves further, as in a real loop: a timer
//   at 100 ms that sleeps 50 ms more wakes at 150 ms, even inside advance(1s).
// * autojump (on by default): when the loop would otherwise wait and nothing outside it could
//   make work (no fd, signal or IoHandle watched, no expected cross-thread call, see
//   Reactor::expect_call_from_thread()), time jumps to the next timer.
//
// Deadlock detection (on by default, with autojump): when the loop would wait, nothing outside
// it could make work, no timer will ever fire, and tasks are unfinished, those tasks can never
// finish. Instead of hanging, each is cancelled, and its Deferred (its EventualResult, a
// runner's run()) fails with weft::Deadlock, whose message gives the virtual time and what the
// loop had. Code inside the task sees Cancelled at its await and its cleanup runs, as after a
// timeout.
//
// Time starts at steady_clock's now() when the clock is made (Options::start to choose), so
// deadlines computed from steady_clock elsewhere stay close; it never goes backwards and stops
// just short of TimePoint::max(), which means "never": advance(Duration::max()) runs every timer
// that will ever fire and leaves the "never" timers pending.
//
// Threading: every member is thread-safe. advance() and jump_to() return at once: the loop
// walks time in its following iterations (run it: run(), run_once(), a runner call). The clock
// belongs to its reactor and must not be used after the reactor is destroyed.
#ifndef WEFT_CORE_VIRTUAL_CLOCK_H_
#define WEFT_CORE_VIRTUAL_CLOCK_H_

#include <atomic>
#include <optional>
#include <stdexcept>
#include <string>

#include <coroutine>

#include "weft/core/clock.h"
#include "weft/core/detail/task_context.h"
#include "weft/core/task.h"
#include "weft/core/time.h"

namespace weft {

// The tasks of a reactor on virtual time wait with nothing that could ever wake them (see
// VirtualClock above). The message says when and what the loop had.
class Deadlock : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class VirtualClock final : public ReactorClock {
 public:
  struct Options {
    std::optional<TimePoint> start = std::nullopt;  // none: steady_clock's now()
    bool autojump = true;
    bool detect_deadlocks = true;  // only while autojumping
  };

  VirtualClock() : VirtualClock(Options()) {}
  explicit VirtualClock(Options options);

  // The virtual clock of `reactor`. Throws UsageError if the reactor is not on one.
  static VirtualClock& of(Reactor& reactor);
  // The same, or nullptr.
  static VirtualClock* find(Reactor& reactor);

  // Moves time forward by `delay` (saturating; zero or negative: nothing), counted from the
  // target of earlier advances that the loop has not reached yet, so two advance(1s) make 2 s.
  void advance(Duration delay);
  // Moves time forward to `when`; a time not after the current target changes nothing.
  void jump_to(TimePoint when);
  // Where advance()/jump_to() asked time to go; now() once the loop is there.
  TimePoint target() const;

  void set_autojump(bool on);
  bool autojump() const { return autojump_.load(std::memory_order_acquire); }
  void set_deadlock_detection(bool on);
  bool deadlock_detection() const { return detect_deadlocks_.load(std::memory_order_acquire); }

  // Where time started, and how far it has moved since.
  TimePoint start() const { return start_; }
  Duration elapsed() const { return now() - start_; }

  // ReactorClock.
  TimePoint now() const override {
    return TimePoint(Duration(now_.load(std::memory_order_acquire)));
  }
  TimePoint real_deadline(TimePoint) const override { return TimePoint::max(); }
  IdleAction on_idle(const IdleState& state) override;
  std::string describe() const override;

  // The latest time virtual time reaches: TimePoint::max() itself means "never".
  static constexpr TimePoint kEnd = TimePoint::max() - Duration(1);

 private:
  void set_target(TimePoint when, bool relative, Duration delay);

  const TimePoint start_;
  std::atomic<Duration::rep> now_;
  std::atomic<Duration::rep> target_;
  std::atomic<bool> autojump_;
  std::atomic<bool> detect_deadlocks_;
};

namespace detail {
struct DeadlockExemption {
  bool await_ready() const noexcept { return false; }
  template <WeftPromise Promise>
  bool await_suspend(std::coroutine_handle<Promise> handle) const noexcept {
    handle.promise().context()->deadlock_exempt = true;
    return false;  // never suspends
  }
  void await_resume() const noexcept {}
};
}  // namespace detail

// Inside a task: `co_await weft::exempt_from_deadlock_detection();` marks the task as one
// that waits, by design, for something from outside the loop (a runner's background group
// waits for the runner's shutdown). Deadlock detection neither counts nor fails it; it still
// counts as a task everywhere else. Loop thread.
[[nodiscard]] inline detail::DeadlockExemption exempt_from_deadlock_detection() { return {}; }

}  // namespace weft

#endif  // WEFT_CORE_VIRTUAL_CLOCK_H_
