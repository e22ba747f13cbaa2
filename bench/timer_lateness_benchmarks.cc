// timer_lateness: how late timers run, weft beside each library's own timer doing the same work.
//
// One iteration arms kLatenessTimers timers at random deadlines kLatenessMinUs..kLatenessMaxUs
// from the iteration's start (microsecond resolution) and runs the loop until all have fired.
// Each callback records its lateness: the moment it ran minus its deadline (negative: early).
// The counters, over every timer of every iteration: p50_us, p90_us, p99_us, max_us, and early
// (how many ran before their deadline; weft promises none). The time per iteration is the
// slowest deadline plus the last timer's lateness, so it says little; read the counters.
//
// Rows: timer_lateness/<backend>/weft for every registered backend and libevent mechanism
// (weft's default timer: a timerfd on Linux), timer_lateness_native/<backend>/weft for weft on
// the library's own timer (WEFT_TIMER=native, the portable fallback), and
// timer_lateness/<library>[:<method>]/raw for uv_timer_t (milliseconds, as libuv takes them,
// rounded up), libevent's evtimer on a default base (no EVENT_BASE_FLAG_PRECISE_TIMER) and Asio's
// steady_timer. Precision is what an idle machine gives; on a loaded one the scheduler adds its
// own delay to every row alike.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_support.h"
#include "bench/pair.h"
#include "benchmark/benchmark.h"
#include "weft/core/backend_registry.h"
#include "weft/core/reactor.h"
#include "weft/core/time.h"

#if WEFT_TIMER_BENCH_LIBUV
#include <uv.h>
#endif
#if WEFT_TIMER_BENCH_LIBEVENT
#include <event2/event.h>
#endif
#if WEFT_TIMER_BENCH_ASIO
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#endif

namespace weft::bench {
namespace {

constexpr int kLatenessTimers = 200;
constexpr int kLatenessMinUs = 1'000;
constexpr int kLatenessMaxUs = 20'000;

// The deadlines of one iteration, as offsets from its start; the same sequence for every row.
class Deadlines {
 public:
  std::vector<Duration> next() {
    std::uniform_int_distribution<int> us(kLatenessMinUs, kLatenessMaxUs);
    std::vector<Duration> offsets(kLatenessTimers);
    for (Duration& offset : offsets) offset = std::chrono::microseconds(us(rng_));
    return offsets;
  }

 private:
  std::mt19937 rng_{12};
};

// Latenesses of every timer of a benchmark, in nanoseconds.
class Lateness {
 public:
  void record(TimePoint deadline) { samples_.push_back((Clock::now() - deadline).count()); }
  std::size_t count() const { return samples_.size(); }

  void report(benchmark::State& state) {
    check(state, static_cast<std::int64_t>(samples_.size()), state.iterations() * kLatenessTimers);
    if (samples_.empty()) return;
    std::sort(samples_.begin(), samples_.end());
    auto at = [&](double q) {
      const auto i = static_cast<std::size_t>(q * static_cast<double>(samples_.size() - 1));
      return static_cast<double>(samples_[i]) / 1000.0;
    };
    state.counters["p50_us"] = at(0.50);
    state.counters["p90_us"] = at(0.90);
    state.counters["p99_us"] = at(0.99);
    state.counters["max_us"] = at(1.0);
    state.counters["early"] = static_cast<double>(
        std::count_if(samples_.begin(), samples_.end(), [](std::int64_t ns) { return ns < 0; }));
    state.SetItemsProcessed(static_cast<std::int64_t>(samples_.size()));
  }

 private:
  std::vector<std::int64_t> samples_;
};

// ---- weft ----

void weft_lateness(benchmark::State& state, const std::string& backend, const char* timer) {
  std::unique_ptr<Reactor> reactor;
  try {
    // WEFT_TIMER is read when the backend is made; put back what was there after.
    const char* old = std::getenv("WEFT_TIMER");
    const std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
    if (timer != nullptr) setenv("WEFT_TIMER", timer, 1);
    reactor = make_reactor(backend);
    if (saved) {
      setenv("WEFT_TIMER", saved->c_str(), 1);
    } else {
      unsetenv("WEFT_TIMER");
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  Deadlines deadlines;
  Lateness lateness;
  for (auto _ : state) {
    const std::vector<Duration> offsets = deadlines.next();
    const std::size_t target = lateness.count() + offsets.size();
    const TimePoint start = Clock::now();
    for (Duration offset : offsets) {
      const TimePoint deadline = start + offset;
      reactor->call_at(deadline, [&lateness, deadline] { lateness.record(deadline); });
    }
    while (lateness.count() < target) reactor->run_once(true);
  }
  lateness.report(state);
}

// ---- libuv: uv_timer_t, milliseconds from the loop's cached clock ----

#if WEFT_TIMER_BENCH_LIBUV
struct UvTimer {
  uv_timer_t handle;
  TimePoint deadline;
  Lateness* lateness;
};

void uv_lateness(benchmark::State& state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<UvTimer> timers(kLatenessTimers);
  for (UvTimer& t : timers) {
    uv_timer_init(&loop, &t.handle);
    t.handle.data = &t;
  }
  Deadlines deadlines;
  Lateness lateness;
  for (auto _ : state) {
    const std::vector<Duration> offsets = deadlines.next();
    uv_update_time(&loop);  // as fresh as libuv's clock gets
    const TimePoint start = Clock::now();
    for (int i = 0; i < kLatenessTimers; ++i) {
      UvTimer& t = timers[i];
      t.deadline = start + offsets[i];
      t.lateness = &lateness;
      // libuv takes whole milliseconds: round up, as a user who wants "not before" would.
      const auto ms = std::chrono::ceil<std::chrono::milliseconds>(offsets[i]).count();
      uv_timer_start(
          &t.handle,
          [](uv_timer_t* h) {
            auto* self = static_cast<UvTimer*>(h->data);
            self->lateness->record(self->deadline);
          },
          static_cast<std::uint64_t>(ms), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);  // returns when every timer has fired
  }
  for (UvTimer& t : timers) uv_close(reinterpret_cast<uv_handle_t*>(&t.handle), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  lateness.report(state);
}
#endif

// ---- libevent: evtimer on a base with libevent's default configuration ----

#if WEFT_TIMER_BENCH_LIBEVENT
struct EvTimer {
  event* ev = nullptr;
  TimePoint deadline;
  Lateness* lateness = nullptr;
};

void ev_lateness(benchmark::State& state, const std::string& method) {
  event_config* config = event_config_new();
  if (!method.empty()) {
    event_config_set_flag(config, EVENT_BASE_FLAG_IGNORE_ENV);
    if (const char** m = event_get_supported_methods(); m != nullptr) {
      for (; *m != nullptr; ++m) {
        if (method != *m) event_config_avoid_method(config, *m);
      }
    }
  }
  event_base* base = event_base_new_with_config(config);
  event_config_free(config);
  if (base == nullptr) {
    state.SkipWithError(("libevent: no base for method " + method).c_str());
    return;
  }
  std::vector<EvTimer> timers(kLatenessTimers);
  for (EvTimer& t : timers) {
    t.ev = evtimer_new(
        base,
        [](evutil_socket_t, short, void* arg) {
          auto* self = static_cast<EvTimer*>(arg);
          self->lateness->record(self->deadline);
        },
        &t);
  }
  Deadlines deadlines;
  Lateness lateness;
  for (auto _ : state) {
    const std::vector<Duration> offsets = deadlines.next();
    event_base_update_cache_time(base);
    const TimePoint start = Clock::now();
    for (int i = 0; i < kLatenessTimers; ++i) {
      EvTimer& t = timers[i];
      t.deadline = start + offsets[i];
      t.lateness = &lateness;
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(offsets[i]).count();
      const timeval tv{.tv_sec = static_cast<time_t>(us / 1'000'000),
                       .tv_usec = static_cast<suseconds_t>(us % 1'000'000)};
      evtimer_add(t.ev, &tv);
    }
    event_base_dispatch(base);  // returns when no event is pending
  }
  for (EvTimer& t : timers) event_free(t.ev);
  event_base_free(base);
  lateness.report(state);
}
#endif

// ---- Asio: steady_timer ----

#if WEFT_TIMER_BENCH_ASIO
void asio_lateness(benchmark::State& state) {
  boost::asio::io_context context(1);
  std::vector<std::unique_ptr<boost::asio::steady_timer>> timers;
  for (int i = 0; i < kLatenessTimers; ++i) {
    timers.push_back(std::make_unique<boost::asio::steady_timer>(context));
  }
  Deadlines deadlines;
  Lateness lateness;
  for (auto _ : state) {
    const std::vector<Duration> offsets = deadlines.next();
    const TimePoint start = Clock::now();
    for (int i = 0; i < kLatenessTimers; ++i) {
      const TimePoint deadline = start + offsets[i];
      timers[i]->expires_at(deadline);
      timers[i]->async_wait(
          [&lateness, deadline](const boost::system::error_code&) { lateness.record(deadline); });
    }
    context.restart();
    context.run();  // returns when every timer has fired
  }
  lateness.report(state);
}
#endif

// Each weft row registered together with the library's own timer (bench/pair.h), so that their
// repetitions interleave. Backends register themselves from static objects too, so the registry
// may not be filled when this runs: the rows are named from what was compiled in, and a backend
// missing at run time fails its rows with the reason.
void register_timer_lateness() {
  // The raw side of each weft backend name ("" when the library has none here).
  std::vector<std::pair<std::string, BenchFn>> backends;
#if WEFT_TIMER_BENCH_LIBUV
  backends.emplace_back("libuv", uv_lateness);
#endif
#if WEFT_TIMER_BENCH_LIBEVENT
  backends.emplace_back("libevent", [](benchmark::State& s) { ev_lateness(s, ""); });
  // Main thread, before any base exists: event_get_supported_methods() is safe here.
  if (const char** m = event_get_supported_methods(); m != nullptr) {
    for (; *m != nullptr; ++m) {
      const std::string method = *m;
      if (method.find_first_of(" (") != std::string::npos) continue;
      backends.emplace_back("libevent:" + method,
                            [method](benchmark::State& s) { ev_lateness(s, method); });
    }
  }
#endif
#if WEFT_TIMER_BENCH_ASIO
  backends.emplace_back("asio", asio_lateness);
#endif
  const Settings settings = [](benchmark::internal::Benchmark* b) {
    b->UseRealTime()->Unit(benchmark::kMillisecond);
  };
  for (const auto& [b, raw] : backends) {
    register_rows("timer_lateness", b,
                  {Side{"weft", [b](benchmark::State& s) { weft_lateness(s, b, nullptr); }},
                   Side{"raw", raw}},
                  settings);
    // weft on the library's own timer (WEFT_TIMER=native): no raw twin of its own, the raw
    // side above is the same library's timer.
    register_rows("timer_lateness_native", b,
                  {Side{"weft", [b](benchmark::State& s) { weft_lateness(s, b, "native"); }}},
                  settings);
  }
}

const bool registered = at_startup(register_timer_lateness);

}  // namespace
}  // namespace weft::bench
