// The raw libevent baselines: the same work as bench/weft_benchmarks.cc, written the idiomatic
// libevent way, registered as <operation>/libevent/raw. (weft's libevent backend has already
// called evthread_use_pthreads() at static initialization, so cross-thread event_active works.)
#include <event2/event.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.h"
#include "bench/raw_task.h"
#include "benchmark/benchmark.h"

namespace weft::bench {
namespace {

void bump(evutil_socket_t, short, void* counter) { ++static_cast<Counter*>(counter)->value; }

// A base used from one thread is made without locks (EVENT_BASE_FLAG_NOLOCK), as an expert
// would: weft's backend needs them for its cross-thread wake-up, the raw side does not.
event_base* new_base(bool locked) {
  event_config* config = event_config_new();
  if (!locked) event_config_set_flag(config, EVENT_BASE_FLAG_NOLOCK);
  event_base* base = event_base_new_with_config(config);
  event_config_free(config);
  return base;
}

struct Base {
  explicit Base(bool locked = false) : base(new_base(locked)) {}
  event_base* base;
  ~Base() { event_base_free(base); }
  Base(const Base&) = delete;
  Base& operator=(const Base&) = delete;
  void run_until(const Counter& counter, std::int64_t target) {
    while (counter.value < target) event_base_loop(base, EVLOOP_ONCE);
  }
};

// The same mechanism as weft's: a queue of (function, argument) drained by one event that
// event_active() makes active (one activation per batch).
struct Queue {
  using Fn = void (*)(void*);
  event* drain_event;
  std::vector<std::pair<Fn, void*>> items, running;
  explicit Queue(event_base* base)
      : drain_event(event_new(
            base, -1, 0,
            [](evutil_socket_t, short, void* arg) {
              auto* self = static_cast<Queue*>(arg);
              self->running.swap(self->items);
              for (const auto& [fn, a] : self->running) fn(a);
              self->running.clear();
              if (!self->items.empty()) event_active(self->drain_event, EV_READ, 0);
            },
            this)) {}
  ~Queue() { event_free(drain_event); }
  void post(Fn fn, void* arg) {
    if (items.empty()) event_active(drain_event, EV_READ, 0);
    items.push_back({fn, arg});
  }
};
void bump_arg(void* counter) { ++static_cast<Counter*>(counter)->value; }
void batch_queue(benchmark::State& state, int n) {
  Base base;
  Queue queue(base.base);
  Counter counter;
  for (auto _ : state) {
    for (int i = 0; i < n; ++i) queue.post(bump_arg, &counter);
    base.run_until(counter, counter.value + n);
  }
  check(state, counter.value, state.iterations() * n);
  state.SetItemsProcessed(state.iterations() * n);
}

// libevent's own way to run a callback soon: event_base_once with no timeout, one per callback.
void batch(benchmark::State& state, int n) {
  Base base;
  Counter counter;
  for (auto _ : state) {
    for (int i = 0; i < n; ++i) event_base_once(base.base, -1, EV_TIMEOUT, bump, &counter, nullptr);
    base.run_until(counter, counter.value + n);
  }
  check(state, counter.value, state.iterations() * n);
  state.SetItemsProcessed(state.iterations() * n);
}

// Each link re-adds a timer event with a zero timeout, so the loop polls the kernel once per
// link, as weft's turn does. (event_base_once, even with a zero timeval, activates at once: the
// whole chain would run in one dispatch pass without polling, starving I/O and timers.)
struct Chain {
  event* timer;
  int left;
  Counter* counter;
};
void chain_link(evutil_socket_t, short, void* arg) {
  static constexpr timeval kNow{};
  auto* chain = static_cast<Chain*>(arg);
  ++chain->counter->value;
  if (--chain->left > 0) evtimer_add(chain->timer, &kNow);
}
void chain(benchmark::State& state, int n) {
  Base base;
  Counter counter;
  Chain c{nullptr, 0, &counter};
  c.timer = evtimer_new(base.base, chain_link, &c);
  for (auto _ : state) {
    static constexpr timeval kNow{};
    c.left = n;
    evtimer_add(c.timer, &kNow);
    base.run_until(counter, counter.value + n);
  }
  event_free(c.timer);
  check(state, counter.value, state.iterations() * n);
  state.SetItemsProcessed(state.iterations() * n);
}

// EVLOOP_NO_EXIT_ON_EMPTY: a base with no events returns at once without polling the kernel;
// an application's base always has some (weft's has its wake-up event), so poll as it would.
void loop_turn(benchmark::State& state) {
  Base base;
  for (auto _ : state) {
    event_base_loop(base.base, EVLOOP_ONCE | EVLOOP_NONBLOCK | EVLOOP_NO_EXIT_ON_EMPTY);
  }
  state.SetItemsProcessed(state.iterations());
}

// A million timer events (made beforehand, as libuv's million-timers benchmark does). With
// `common`, libevent's idiom for many timers of few durations: each of the 50 durations is a
// common timeout (event_base_init_common_timeout), a queue per duration instead of the heap.
void timers_with(benchmark::State& state, bool time_arming, bool common) {
  Base base;
  Counter counter;
  std::vector<event*> events(kTimers);
  std::vector<const timeval*> delays(kTimers);
  std::vector<timeval> durations(kTimerSpreadMs + 1);
  for (int ms = 1; ms <= kTimerSpreadMs; ++ms) {
    const timeval plain{.tv_sec = 0, .tv_usec = ms * 1000};
    durations[ms] = common ? *event_base_init_common_timeout(base.base, &plain) : plain;
  }
  std::mt19937 rng(42);
  for (int i = 0; i < kTimers; ++i) {
    events[i] = evtimer_new(base.base, bump, &counter);
    delays[i] = &durations[1 + rng() % kTimerSpreadMs];
  }
  auto arm_all = [&] {
    for (int i = 0; i < kTimers; ++i) evtimer_add(events[i], delays[i]);
  };
  // One untimed round first, as on weft's side: both sides measure warm structures.
  arm_all();
  base.run_until(counter, kTimers);
  counter.value = 0;
  for (auto _ : state) {
    if (!time_arming) state.PauseTiming();
    arm_all();
    if (time_arming) {
      state.PauseTiming();
    } else {
      state.ResumeTiming();
    }
    base.run_until(counter, counter.value + kTimers);
    if (time_arming) state.ResumeTiming();
  }
  for (event* e : events) event_free(e);
  check(state, counter.value, state.iterations() * kTimers);
  state.SetItemsProcessed(state.iterations() * kTimers);
  state.counters["bytes_per_timer"] = static_cast<double>(event_get_struct_event_size());
}
void timers(benchmark::State& state, bool time_arming) { timers_with(state, time_arming, false); }

void timers_churn_with(benchmark::State& state, bool common) {
  Base base;
  struct Churn {
    event* timer;
    std::vector<timeval> durations;
    std::int64_t cancelled = 0;
    Counter done = {};
  } churn{evtimer_new(
              base.base, [](evutil_socket_t, short, void*) {}, nullptr),
          std::vector<timeval>(kTimerSpreadMs)};
  for (int i = 0; i < kTimerSpreadMs; ++i) {
    const timeval plain{.tv_sec = 0, .tv_usec = (1 + i) * 1000};
    churn.durations[i] = common ? *event_base_init_common_timeout(base.base, &plain) : plain;
  }
  for (auto _ : state) {
    event_base_once(
        base.base, -1, EV_TIMEOUT,
        [](evutil_socket_t, short, void* arg) {
          auto* c = static_cast<Churn*>(arg);
          for (int i = 0; i < kChurn; ++i) {
            evtimer_add(c->timer, &c->durations[i % kTimerSpreadMs]);
            c->cancelled += evtimer_del(c->timer) == 0;
          }
          ++c->done.value;
        },
        &churn, nullptr);
    base.run_until(churn.done, churn.done.value + 1);
  }
  event_free(churn.timer);
  check(state, churn.cancelled, state.iterations() * kChurn);
  state.SetItemsProcessed(state.iterations() * kChurn);
}
void timers_churn(benchmark::State& state) { timers_churn_with(state, false); }

// Cross-thread: a mutex-protected queue and event_active() on an event of the loop's.
class LoopThread {
 public:
  explicit LoopThread(int cpu) {
    wake_ = event_new(base_.base, -1, 0, drain, this);
    thread_ = std::thread([this, cpu] {
      if (cpu >= 0) pin_to_cpu(cpu);
      event_base_loop(base_.base, EVLOOP_NO_EXIT_ON_EMPTY);
    });
  }
  ~LoopThread() {
    stop_.store(true);
    event_active(wake_, EV_READ, 0);
    thread_.join();
    event_free(wake_);
  }
  void call(std::function<void()> fn) {
    queue_.push(std::move(fn));
    event_active(wake_, EV_READ, 0);
  }

 private:
  static void drain(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<LoopThread*>(arg);
    self->queue_.run_all();
    if (self->stop_.load()) event_base_loopbreak(self->base_.base);
  }
  Base base_{/*locked=*/true};  // event_active() from other threads
  event* wake_;
  CallQueue queue_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct RingSlot {
  SocketRing* ring;
  int index;
};
void fd_chain(benchmark::State& state, int n) {
  Base base;
  SocketRing ring(n);
  if (!ring.ok(n)) return state.SkipWithError("socketpair failed (raise the fd limit)");
  std::vector<RingSlot> slots(n);
  std::vector<event*> events;
  for (int i = 0; i < n; ++i) {
    slots[i] = RingSlot{&ring, i};
    event* e = event_new(
        base.base, ring.read_end(i), EV_READ | EV_PERSIST,
        [](evutil_socket_t, short, void* arg) {
          auto* slot = static_cast<RingSlot*>(arg);
          slot->ring->hop(slot->index);
        },
        &slots[i]);
    event_add(e, nullptr);
    events.push_back(e);
  }
  for (auto _ : state) ring.lap([&] { event_base_loop(base.base, EVLOOP_ONCE); });
  for (event* e : events) event_free(e);
  ring.report(state);
}

void one_turn(benchmark::State& state) {
  Base base;
  Counter counter;
  for (auto _ : state) {
    event_base_once(base.base, -1, EV_TIMEOUT, bump, &counter, nullptr);
    base.run_until(counter, counter.value + 1);
  }
  check(state, counter.value, state.iterations());
}

void one_turn_fresh(benchmark::State& state) {
  Counter counter;
  for (auto _ : state) {
    Base base;
    event_base_once(base.base, -1, EV_TIMEOUT, bump, &counter, nullptr);
    base.run_until(counter, counter.value + 1);
  }
  check(state, counter.value, state.iterations());
}

// One turn whose callback resumes a coroutine task (bench/raw_task.h).
void one_task(benchmark::State& state) {
  Base base;
  one_task_per_turn(
      state,
      [&](void* frame) {
        event_base_once(
            base.base, -1, EV_TIMEOUT,
            [](evutil_socket_t, short, void* f) { RawTask<int>::resume(f); }, frame, nullptr);
      },
      [&](const Counter& counter, std::int64_t target) { base.run_until(counter, target); });
}

void runner_floor(benchmark::State& state, BusyNeighbours::Kind neighbours) {
  runner_floor_over<LoopThread>(state, neighbours);
}
void submitters(benchmark::State& state, int n) { submitters_over<LoopThread>(state, n); }

// A base as weft's backend makes one: with locks (cross-thread wake-up) and one event.
void create_destroy(benchmark::State& state) {
  for (auto _ : state) {
    event_base* base = new_base(/*locked=*/true);
    event* wake = event_new(
        base, -1, 0, [](evutil_socket_t, short, void*) {}, nullptr);
    event_free(wake);
    event_base_free(base);
  }
  state.SetItemsProcessed(state.iterations());
}

void watch_memory(benchmark::State& state) {
  double bytes = 0, fds = 0;
  for (auto _ : state) {
    Base base;
    IdleFds pairs(kWatchMemoryFds);
    if (!pairs.ok(kWatchMemoryFds)) return state.SkipWithError("socketpair failed");
    const std::size_t heap_before = heap_in_use();
    const int fds_before = open_descriptors();
    std::vector<event*> events;
    events.reserve(kWatchMemoryFds);
    for (int i = 0; i < kWatchMemoryFds; ++i) {
      events.push_back(event_new(
          base.base, pairs.read_end(i), EV_READ | EV_PERSIST, [](evutil_socket_t, short, void*) {},
          nullptr));
      event_add(events.back(), nullptr);
    }
    bytes = static_cast<double>(heap_in_use() - heap_before) / kWatchMemoryFds;
    fds = static_cast<double>(open_descriptors() - fds_before) / kWatchMemoryFds;
    for (event* e : events) event_free(e);
  }
  state.counters["bytes_per_watch"] = bytes;
  state.counters["fds_per_watch"] = fds;
}

void fd_turn_idle(benchmark::State& state, int idle) {
  Base base;
  IdleFds pairs(idle);
  SocketRing active(1);
  if (!pairs.ok(idle) || !active.ok(1)) return state.SkipWithError("socketpair failed");
  std::vector<event*> events;
  for (int i = 0; i < idle; ++i) {
    events.push_back(event_new(
        base.base, pairs.read_end(i), EV_READ | EV_PERSIST, [](evutil_socket_t, short, void*) {},
        nullptr));
    event_add(events.back(), nullptr);
  }
  events.push_back(event_new(
      base.base, active.read_end(0), EV_READ | EV_PERSIST,
      [](evutil_socket_t, short, void* arg) { static_cast<SocketRing*>(arg)->hop(0); }, &active));
  event_add(events.back(), nullptr);
  for (auto _ : state) active.lap([&] { event_base_loop(base.base, EVLOOP_ONCE); });
  for (event* e : events) event_free(e);
  active.report(state);
  state.counters["idle_fds"] = idle;
}

void watch_churn(benchmark::State& state) {
  Base base;
  IdleFds pair(1);
  if (!pair.ok(1)) return state.SkipWithError("socketpair failed");
  event* e = event_new(
      base.base, pair.read_end(0), EV_READ | EV_PERSIST, [](evutil_socket_t, short, void*) {},
      nullptr);
  for (auto _ : state) {
    event_add(e, nullptr);
    event_base_loop(base.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    event_del(e);
  }
  event_free(e);
  state.SetItemsProcessed(state.iterations());
}

// The same with an event made and freed per watch.
void watch_churn_fresh(benchmark::State& state) {
  Base base;
  IdleFds pair(1);
  if (!pair.ok(1)) return state.SkipWithError("socketpair failed");
  for (auto _ : state) {
    event* e = event_new(
        base.base, pair.read_end(0), EV_READ | EV_PERSIST, [](evutil_socket_t, short, void*) {},
        nullptr);
    event_add(e, nullptr);
    event_base_loop(base.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    event_free(e);  // deletes it first
  }
  state.SetItemsProcessed(state.iterations());
}

const bool registered =
    register_raw("libevent", RawSuite{.batch = batch_queue,
                                      .chain = chain,
                                      .loop_turn = loop_turn,
                                      .timers = timers,
                                      .timers_churn = timers_churn,
                                      .xthread_rtt = xthread_rtt_over<LoopThread>,
                                      .xthread_flood = xthread_flood_over<LoopThread>,
                                      .fd_chain = fd_chain,
                                      .one_turn = one_turn,
                                      .one_turn_fresh = one_turn_fresh,
                                      .one_task = one_task,
                                      .runner_floor = runner_floor,
                                      .submitters = submitters,
                                      .create_destroy = create_destroy,
                                      .watch_memory = watch_memory,
                                      .fd_turn_idle = fd_turn_idle,
                                      .watch_churn = watch_churn,
                                      .watch_churn_fresh = watch_churn_fresh});
// The other idioms: event_base_once per callback beside the queue, common timeouts.
const bool registered_idioms =
    add_raw("call_soon_batch", "libevent", "raw_once",
            [](benchmark::State& s) { batch(s, kBatch); }) &&
    add_raw("coro_spawn", "libevent", "raw_once", [](benchmark::State& s) { batch(s, kTasks); }) &&
    add_raw("timers_arm", "libevent", "raw_common",
            [](benchmark::State& s) { timers_with(s, true, true); }) &&
    add_raw("timers_fire", "libevent", "raw_common",
            [](benchmark::State& s) { timers_with(s, false, true); }) &&
    add_raw("timers_churn", "libevent", "raw_common",
            [](benchmark::State& s) { timers_churn_with(s, true); });

}  // namespace
}  // namespace weft::bench
