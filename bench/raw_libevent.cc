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
#include "benchmark/benchmark.h"

namespace weft::bench {
namespace {

void bump(evutil_socket_t, short, void* counter) { ++static_cast<Counter*>(counter)->value; }

struct Base {
  event_base* base = event_base_new();
  ~Base() { event_base_free(base); }
  void run_until(const Counter& counter, std::int64_t target) {
    while (counter.value < target) event_base_loop(base, EVLOOP_ONCE);
  }
};

// libevent's way to run a callback soon: event_base_once with no timeout.
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

void loop_turn(benchmark::State& state) {
  Base base;
  for (auto _ : state) event_base_loop(base.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
  state.SetItemsProcessed(state.iterations());
}

// A million timer events (made beforehand, as libuv's million-timers benchmark does).
void timers(benchmark::State& state, bool time_arming) {
  Base base;
  Counter counter;
  std::vector<event*> events(kTimers);
  std::vector<timeval> delays(kTimers);
  std::mt19937 rng(42);
  for (int i = 0; i < kTimers; ++i) {
    events[i] = evtimer_new(base.base, bump, &counter);
    const int ms = 1 + static_cast<int>(rng() % kTimerSpreadMs);
    delays[i] = timeval{.tv_sec = 0, .tv_usec = ms * 1000};
  }
  for (auto _ : state) {
    if (!time_arming) state.PauseTiming();
    for (int i = 0; i < kTimers; ++i) evtimer_add(events[i], &delays[i]);
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

void timers_churn(benchmark::State& state) {
  Base base;
  struct Churn {
    event* timer;
    std::int64_t cancelled = 0;
    Counter done = {};
  } churn{evtimer_new(
      base.base, [](evutil_socket_t, short, void*) {}, nullptr)};
  for (auto _ : state) {
    event_base_once(
        base.base, -1, EV_TIMEOUT,
        [](evutil_socket_t, short, void* arg) {
          auto* c = static_cast<Churn*>(arg);
          for (int i = 0; i < kChurn; ++i) {
            const timeval delay{.tv_sec = 0, .tv_usec = (1 + i % kTimerSpreadMs) * 1000};
            evtimer_add(c->timer, &delay);
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
  Base base_;
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

const bool registered =
    register_raw("libevent", RawSuite{.batch = batch,
                                      .chain = chain,
                                      .loop_turn = loop_turn,
                                      .timers = timers,
                                      .timers_churn = timers_churn,
                                      .xthread_rtt = xthread_rtt_over<LoopThread>,
                                      .xthread_flood = xthread_flood_over<LoopThread>,
                                      .fd_chain = fd_chain,
                                      .one_turn = one_turn,
                                      .one_turn_fresh = one_turn_fresh});

}  // namespace
}  // namespace weft::bench
