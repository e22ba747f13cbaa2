#include "weft/core/virtual_clock.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"

namespace weft {

VirtualClock::VirtualClock(Options options)
    : start_(std::min(options.start.value_or(Clock::now()), kEnd)),
      now_(start_.time_since_epoch().count()),
      target_(start_.time_since_epoch().count()),
      autojump_(options.autojump),
      detect_deadlocks_(options.detect_deadlocks) {}

VirtualClock* VirtualClock::find(Reactor& reactor) {
  return dynamic_cast<VirtualClock*>(reactor.clock());
}

VirtualClock& VirtualClock::of(Reactor& reactor) {
  if (VirtualClock* clock = find(reactor)) return *clock;
  throw UsageError(absl::StrCat("weft: reactor '", reactor.name(),
                                "' runs on real time, not on a VirtualClock; make it with one "
                                "(make_reactor(name, std::make_unique<VirtualClock>()), or "
                                "RunnerOptions::clock = \"virtual\")"));
}

TimePoint VirtualClock::target() const {
  return TimePoint(Duration(target_.load(std::memory_order_acquire)));
}

void VirtualClock::advance(Duration delay) {
  if (delay <= Duration::zero()) return;
  set_target(TimePoint(), /*relative=*/true, delay);
}

void VirtualClock::jump_to(TimePoint when) { set_target(when, /*relative=*/false, {}); }

void VirtualClock::set_target(TimePoint when, bool relative, Duration delay) {
  Duration::rep current = target_.load(std::memory_order_acquire);
  for (;;) {
    // The loop may have reached the target and gone no further; count from the later of the two.
    const TimePoint base = std::max(TimePoint(Duration(current)), now());
    const TimePoint wanted = std::min(relative ? add_saturating(base, delay) : when, kEnd);
    if (wanted.time_since_epoch().count() <= current) return;
    if (target_.compare_exchange_weak(current, wanted.time_since_epoch().count(),
                                      std::memory_order_acq_rel)) {
      break;
    }
  }
  wake_reactor();
}

void VirtualClock::set_autojump(bool on) {
  autojump_.store(on, std::memory_order_release);
  if (on) wake_reactor();
}

void VirtualClock::set_deadlock_detection(bool on) {
  detect_deadlocks_.store(on, std::memory_order_release);
  if (on) wake_reactor();
}

// Loop thread only, so now_ has one writer; other threads only read it.
ReactorClock::IdleAction VirtualClock::on_idle(const IdleState& state) {
  const Duration::rep now = now_.load(std::memory_order_relaxed);
  const Duration::rep target = target_.load(std::memory_order_acquire);
  const Duration::rep next = state.next_deadline.time_since_epoch().count();
  if (next <= now) return IdleAction::kRunDue;
  if (target > now) {
    // Walk: to the next timer on the way, or to the target when none is left before it.
    now_.store(std::min(next, target), std::memory_order_release);
    return IdleAction::kRunDue;
  }
  if (!autojump_.load(std::memory_order_acquire) || !state.quiet) return IdleAction::kWait;
  if (state.next_deadline != TimePoint::max()) {
    now_.store(std::min(state.next_deadline, kEnd).time_since_epoch().count(),
               std::memory_order_release);
    return IdleAction::kRunDue;
  }
  if (state.tasks > 0 && detect_deadlocks_.load(std::memory_order_acquire)) {
    return IdleAction::kDeadlock;
  }
  return IdleAction::kWait;
}

std::string VirtualClock::describe() const {
  char text[64];
  std::snprintf(text, sizeof text, "virtual time %.9g s after the clock started",
                std::chrono::duration<double>(elapsed()).count());
  return text;
}

}  // namespace weft
