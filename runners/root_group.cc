#include "weft/runners/root_group.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <mutex>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "weft/core/spawn.h"
#include "weft/core/virtual_clock.h"

namespace weft {
namespace {

// Reactor -> its root groups, most recent last. A runner registers one per reactor; two
// runners on one host reactor both register, and the newer serves start_background().
std::mutex& registry_mu() {
  static std::mutex mu;
  return mu;
}
absl::flat_hash_map<Reactor*, std::vector<RootGroup*>>& registry() {
  static auto* map = new absl::flat_hash_map<Reactor*, std::vector<RootGroup*>>();
  return *map;
}

// Clears RootGroupState::group however the group's body ends (returns, throws, or its frame
// is destroyed with the reactor).
struct GroupSlot {
  detail::RootGroupState* state;
  ~GroupSlot() { state->group = nullptr; }
};

Task<void> serve(std::shared_ptr<detail::RootGroupState> state) {
  // It waits for close(), from the runner's shutdown: on virtual time that is no deadlock.
  co_await exempt_from_deadlock_detection();
  // The body is named, not a temporary of the co_await expression: GCC 12 destroys such a
  // temporary twice, which released `state` once too often.
  auto body = [state](TaskGroup& group) -> Task<void> {
    state->group = &group;
    GroupSlot slot{state.get()};
    std::vector<std::pair<Task<void>, detail::ContextRef>> pending = std::move(state->pending);
    state->pending.clear();
    for (auto& [work, vars] : pending) {
      detail::ContextSwitch use(vars);  // the starter's context, captured by start_soon
      group.start_soon(std::move(work));
    }
    // Open until close(): a Deferred nobody fires, so the body waits until it is cancelled.
    Deferred<void> forever;
    try {
      co_await forever;
    } catch (const Cancelled&) {
    }
  };
  co_await open_task_group(body);
}

std::string milliseconds(Duration bound) {
  if (bound == Duration::max()) return "an unlimited time";
  return absl::StrCat(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::max(bound, Duration::zero()))
          .count(),
      " ms");
}

void report_unfinished_in(detail::RootGroupState& state, Duration bound, std::string_view runner) {
  if (state.live.empty()) return;
  std::vector<std::string> quoted;
  for (const std::string& name : state.live) quoted.push_back(absl::StrCat("'", name, "'"));
  state.reactor->report_error(
      std::make_exception_ptr(TimeoutError(
          absl::StrCat("weft: ", state.live.size(), " piece", state.live.size() == 1 ? "" : "s",
                       " of background work did not finish within ", milliseconds(bound),
                       " of the runner's shutdown cancelling it: ", absl::StrJoin(quoted, ", ")))),
      absl::StrCat("shutting down the ", std::string(runner), " runner"));
}

}  // namespace

void detail::report_background_error(Reactor& reactor, const std::string& name) {
  reactor.report_error(std::current_exception(), absl::StrCat("background work '", name, "'"));
}

RootGroup::RootGroup(Reactor& reactor) : state_(std::make_shared<detail::RootGroupState>(reactor)) {
  std::lock_guard lock(registry_mu());
  registry()[&reactor].push_back(this);
}

RootGroup::~RootGroup() {
  {
    std::lock_guard lock(registry_mu());
    auto it = registry().find(state_->reactor);
    if (it != registry().end()) {
      std::erase(it->second, this);
      if (it->second.empty()) registry().erase(it);
    }
  }
  close();
}

void RootGroup::start_root_task() {
  state_->started = true;
  state_->ever_started.store(true, std::memory_order_release);
  // The root context: each piece of work carries its own starter's context, not the context
  // of whoever happened to start the first one.
  Context::root().run([&] { state_->done = spawn(*state_->reactor, serve(state_)); });
  // Its only possible failure is Cancelled (closed before it started): nothing to report.
  state_->done.add_errback([](std::exception_ptr) {});
}

void RootGroup::close() {
  state_->closing = true;
  if (state_->group != nullptr) {
    state_->group->cancel();
    return;
  }
  // Not open yet: the work waiting for the root task never starts (its frames, and with
  // them its names, go now), and the root task is cancelled before it starts.
  auto pending = std::move(state_->pending);
  state_->pending.clear();
  pending.clear();
  if (state_->started && !state_->done.called()) state_->done.cancel();
}

std::vector<std::string> RootGroup::unfinished() const {
  return std::vector<std::string>(state_->live.begin(), state_->live.end());
}

bool RootGroup::shut_down(Duration bound, std::string_view runner) {
  Reactor& reactor = *state_->reactor;
  try {
    close();
    if (!closed()) {
      // The bound is real time, whatever the reactor's clock: on virtual time, cleanup stuck on
      // an fd would otherwise hold the runner's destructor forever.
      const TimePoint deadline = add_saturating(Clock::now(), bound);
      Reactor::RealTimeAlarm alarm;
      if (deadline != TimePoint::max()) alarm = reactor.wake_at_real_time(deadline);
      while (!closed() && Clock::now() < deadline) {
        // A stop() aimed at the runner must not make run_once() spin without blocking.
        reactor.take_stop_request();
        reactor.run_once(/*may_block=*/true);
      }
    }
  } catch (...) {
    reactor.report_error(std::current_exception(),
                         absl::StrCat("shutting down the ", std::string(runner), " runner"));
  }
  report_unfinished(bound, runner);
  return closed();
}

void RootGroup::report_unfinished(Duration bound, std::string_view runner) {
  report_unfinished_in(*state_, bound, runner);
}

void RootGroup::close_then(Duration bound, std::string_view runner,
                           absl::AnyInvocable<void()> on_closed) {
  close();
  if (closed()) {
    if (on_closed != nullptr) on_closed();
    return;
  }
  // The timer and the listener keep only the shared state: the group may be destroyed now.
  TimerHandle report;
  if (bound != Duration::max()) {
    Context::root().run([&] {
      report =
          state_->reactor->call_later(bound, [state = state_, bound, runner = std::string(runner)] {
            report_unfinished_in(*state, bound, runner);
          });
    });
  }
  state_->done.add_done([report, on_closed = std::move(on_closed)]() mutable {
    report.cancel();  // the group closed in time: nothing to report
    if (on_closed != nullptr) on_closed();
  });
}

RootGroup* RootGroup::of(Reactor& reactor) {
  std::lock_guard lock(registry_mu());
  auto it = registry().find(&reactor);
  return it == registry().end() ? nullptr : it->second.back();
}

}  // namespace weft
