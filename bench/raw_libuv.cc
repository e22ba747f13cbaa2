// The raw libuv baselines: the same work as bench/weft_benchmarks.cc, written the idiomatic
// libuv way, registered as <operation>/libuv/raw.
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench/bench_support.h"
#include "bench/raw_task.h"
#include "benchmark/benchmark.h"

namespace weft::bench {
namespace {

using Fn = void (*)(void*);

// libuv's way to run callbacks soon: a queue of (function, argument) drained by an idle
// handle (while active, the loop polls without blocking). Not a timer per callback.
class IdleQueue {
 public:
  explicit IdleQueue(uv_loop_t* loop) {
    uv_idle_init(loop, &idle_);
    idle_.data = this;
  }
  void post(Fn fn, void* arg) {
    items_.push_back({fn, arg});
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&idle_))) uv_idle_start(&idle_, drain);
  }
  void close() { uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr); }

 private:
  static void drain(uv_idle_t* idle) {
    auto* self = static_cast<IdleQueue*>(idle->data);
    self->running_.swap(self->items_);
    for (const auto& [fn, arg] : self->running_) fn(arg);
    self->running_.clear();
    if (self->items_.empty()) uv_idle_stop(idle);
  }
  uv_idle_t idle_;
  std::vector<std::pair<Fn, void*>> items_, running_;
};

// A loop as an application keeps one: alive (a cross-thread async handle), with a queue.
struct Loop {
  uv_loop_t loop;
  uv_async_t async;
  IdleQueue* queue;
  Loop() {
    uv_loop_init(&loop);
    uv_async_init(&loop, &async, [](uv_async_t*) {});
    queue = new IdleQueue(&loop);
  }
  ~Loop() {
    queue->close();
    uv_close(reinterpret_cast<uv_handle_t*>(&async), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    delete queue;
  }
  void run_until(const Counter& counter, std::int64_t target) {
    // UV_RUN_ONCE runs due timers before it polls and may then block: poll without blocking
    // when a timer is already due (as weft's libuv backend does).
    while (counter.value < target) {
      uv_update_time(&loop);
      uv_run(&loop, uv_backend_timeout(&loop) == 0 ? UV_RUN_NOWAIT : UV_RUN_ONCE);
    }
  }
};

void bump(void* counter) { ++static_cast<Counter*>(counter)->value; }

void batch(benchmark::State& state, int n) {
  Loop loop;
  Counter counter;
  for (auto _ : state) {
    for (int i = 0; i < n; ++i) loop.queue->post(bump, &counter);
    loop.run_until(counter, counter.value + n);
  }
  check(state, counter.value, state.iterations() * n);
  state.SetItemsProcessed(state.iterations() * n);
}

struct Chain {
  IdleQueue* queue;
  int left;
  Counter* counter;
};
void chain_link(void* arg) {
  auto* chain = static_cast<Chain*>(arg);
  ++chain->counter->value;
  if (--chain->left > 0) chain->queue->post(chain_link, chain);
}
void chain(benchmark::State& state, int n) {
  Loop loop;
  Counter counter;
  for (auto _ : state) {
    Chain c{loop.queue, n, &counter};
    loop.queue->post(chain_link, &c);
    loop.run_until(counter, counter.value + n);
  }
  check(state, counter.value, state.iterations() * n);
  state.SetItemsProcessed(state.iterations() * n);
}

void loop_turn(benchmark::State& state) {
  Loop loop;
  for (auto _ : state) uv_run(&loop.loop, UV_RUN_NOWAIT);
  state.SetItemsProcessed(state.iterations());
}

// A million uv_timer_t, as libuv's own benchmark-million-timers does.
void timers(benchmark::State& state, bool time_arming) {
  Loop loop;
  std::vector<uv_timer_t> handles(kTimers);
  std::vector<std::uint64_t> delays(kTimers);
  std::mt19937 rng(42);
  for (auto& d : delays) d = 1 + rng() % kTimerSpreadMs;
  Counter counter;
  for (auto& h : handles) {
    uv_timer_init(&loop.loop, &h);
    h.data = &counter;
  }
  auto arm_all = [&] {
    for (int i = 0; i < kTimers; ++i) {
      uv_timer_start(
          &handles[i], [](uv_timer_t* t) { ++static_cast<Counter*>(t->data)->value; }, delays[i],
          0);
    }
  };
  // One untimed round first, as on weft's side: both sides measure warm structures.
  arm_all();
  loop.run_until(counter, kTimers);
  counter.value = 0;
  for (auto _ : state) {
    if (!time_arming) state.PauseTiming();
    arm_all();
    if (time_arming) {
      state.PauseTiming();
    } else {
      state.ResumeTiming();
    }
    loop.run_until(counter, counter.value + kTimers);
    if (time_arming) state.ResumeTiming();
  }
  for (auto& h : handles) uv_close(reinterpret_cast<uv_handle_t*>(&h), nullptr);
  uv_run(&loop.loop, UV_RUN_NOWAIT);  // the close callbacks; the async handle keeps it alive
  check(state, counter.value, state.iterations() * kTimers);
  state.SetItemsProcessed(state.iterations() * kTimers);
  state.counters["bytes_per_timer"] = sizeof(uv_timer_t);
}

void timers_churn(benchmark::State& state) {
  Loop loop;
  uv_timer_t timer;
  uv_timer_init(&loop.loop, &timer);
  struct Churn {
    uv_timer_t* timer;
    std::int64_t cancelled = 0;
    Counter done = {};
  } churn{&timer};
  for (auto _ : state) {
    loop.queue->post(
        [](void* arg) {
          auto* c = static_cast<Churn*>(arg);
          for (int i = 0; i < kChurn; ++i) {
            uv_timer_start(
                c->timer, [](uv_timer_t*) {}, 1 + i % kTimerSpreadMs, 0);
            c->cancelled += uv_timer_stop(c->timer) == 0;
          }
          ++c->done.value;
        },
        &churn);
    loop.run_until(churn.done, churn.done.value + 1);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
  check(state, churn.cancelled, state.iterations() * kChurn);
  state.SetItemsProcessed(state.iterations() * kChurn);
}

// Cross-thread: a mutex-protected queue and a uv_async_t (which coalesces sends).
class LoopThread {
 public:
  explicit LoopThread(int cpu) {
    uv_loop_init(&loop_);
    uv_async_init(&loop_, &async_, [](uv_async_t* a) {
      auto* self = static_cast<LoopThread*>(a->data);
      self->queue_.run_all();
      if (self->stop_.load()) uv_stop(&self->loop_);
    });
    async_.data = this;
    thread_ = std::thread([this, cpu] {
      if (cpu >= 0) pin_to_cpu(cpu);
      uv_run(&loop_, UV_RUN_DEFAULT);
    });
  }
  ~LoopThread() {
    stop_.store(true);
    uv_async_send(&async_);
    thread_.join();
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }
  void call(std::function<void()> fn) {
    queue_.push(std::move(fn));
    uv_async_send(&async_);
  }

 private:
  uv_loop_t loop_;
  uv_async_t async_;
  CallQueue queue_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

struct PollRing {
  SocketRing ring;
  std::vector<uv_poll_t> polls;
  explicit PollRing(int n) : ring(n), polls(n) {}
};
void fd_chain(benchmark::State& state, int n) {
  Loop loop;
  PollRing r(n);
  if (!r.ring.ok(n)) return state.SkipWithError("socketpair failed (raise the fd limit)");
  for (int i = 0; i < n; ++i) {
    uv_poll_init(&loop.loop, &r.polls[i], r.ring.read_end(i));
    r.polls[i].data = &r;
    uv_poll_start(&r.polls[i], UV_READABLE, [](uv_poll_t* p, int, int) {
      auto* self = static_cast<PollRing*>(p->data);
      self->ring.hop(static_cast<int>(p - self->polls.data()));
    });
  }
  for (auto _ : state) r.ring.lap([&] { uv_run(&loop.loop, UV_RUN_ONCE); });
  for (auto& p : r.polls) uv_close(reinterpret_cast<uv_handle_t*>(&p), nullptr);
  uv_run(&loop.loop, UV_RUN_NOWAIT);
  r.ring.report(state);
}

// The floor of the blocking runner: one callback posted and run by one loop iteration.
void one_turn(benchmark::State& state) {
  Loop loop;
  Counter counter;
  for (auto _ : state) {
    loop.queue->post(bump, &counter);
    loop.run_until(counter, counter.value + 1);
  }
  check(state, counter.value, state.iterations());
}

// ... and with a fresh loop each time.
void one_turn_fresh(benchmark::State& state) {
  Counter counter;
  for (auto _ : state) {
    Loop loop;
    loop.queue->post(bump, &counter);
    loop.run_until(counter, counter.value + 1);
  }
  check(state, counter.value, state.iterations());
}

// ... and with the callback resuming a coroutine task (bench/raw_task.h).
void one_task(benchmark::State& state) {
  Loop loop;
  one_task_per_turn(
      state, [&](void* frame) { loop.queue->post(RawTask<int>::resume, frame); },
      [&](const Counter& counter, std::int64_t target) { loop.run_until(counter, target); });
}

// Runner floors: the cross-thread call, waited for as weft's runner waits (Completion).
void runner_floor(benchmark::State& state, BusyNeighbours::Kind neighbours) {
  runner_floor_over<LoopThread>(state, neighbours);
}
void submitters(benchmark::State& state, int n) { submitters_over<LoopThread>(state, n); }

// A loop with what weft's libuv backend makes beside it: a wake-up async, an idle handle for
// requested turns and a timer; all closed again.
void create_destroy(benchmark::State& state) {
  for (auto _ : state) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_async_t async;
    uv_idle_t idle;
    uv_timer_t timer;
    uv_async_init(&loop, &async, [](uv_async_t*) {});
    uv_idle_init(&loop, &idle);
    uv_timer_init(&loop, &timer);
    for (auto* h : {reinterpret_cast<uv_handle_t*>(&async), reinterpret_cast<uv_handle_t*>(&idle),
                    reinterpret_cast<uv_handle_t*>(&timer)}) {
      uv_close(h, nullptr);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0) return state.SkipWithError("uv_loop_close failed");
  }
  state.SetItemsProcessed(state.iterations());
}

// Heap bytes and descriptors per watched fd: kWatchMemoryFds uv_poll_t started and polled once
// (libuv registers with epoll in its next iteration).
void watch_memory(benchmark::State& state) {
  double bytes = 0, fds = 0;
  for (auto _ : state) {
    Loop loop;
    IdleFds pairs(kWatchMemoryFds);
    if (!pairs.ok(kWatchMemoryFds)) return state.SkipWithError("socketpair failed");
    const std::size_t heap_before = heap_in_use();
    const int fds_before = open_descriptors();
    auto* polls = new uv_poll_t[kWatchMemoryFds];
    for (int i = 0; i < kWatchMemoryFds; ++i) {
      uv_poll_init(&loop.loop, &polls[i], pairs.read_end(i));
      uv_poll_start(&polls[i], UV_READABLE, [](uv_poll_t*, int, int) {});
    }
    uv_run(&loop.loop, UV_RUN_NOWAIT);
    bytes = static_cast<double>(heap_in_use() - heap_before) / kWatchMemoryFds;
    fds = static_cast<double>(open_descriptors() - fds_before) / kWatchMemoryFds;
    for (int i = 0; i < kWatchMemoryFds; ++i) {
      uv_close(reinterpret_cast<uv_handle_t*>(&polls[i]), nullptr);
    }
    uv_run(&loop.loop, UV_RUN_NOWAIT);
    delete[] polls;
  }
  state.counters["bytes_per_watch"] = bytes;
  state.counters["fds_per_watch"] = fds;
}

// One byte written to an active socketpair and read back in its readiness callback, per
// iteration, with `idle` other watched fds that never fire.
void fd_turn_idle(benchmark::State& state, int idle) {
  Loop loop;
  IdleFds pairs(idle);
  SocketRing active(1);
  if (!pairs.ok(idle) || !active.ok(1)) return state.SkipWithError("socketpair failed");
  std::vector<uv_poll_t> polls(idle + 1);
  for (int i = 0; i < idle; ++i) {
    uv_poll_init(&loop.loop, &polls[i], pairs.read_end(i));
    uv_poll_start(&polls[i], UV_READABLE, [](uv_poll_t*, int, int) {});
  }
  uv_poll_t& hot = polls[idle];
  uv_poll_init(&loop.loop, &hot, active.read_end(0));
  hot.data = &active;
  uv_poll_start(&hot, UV_READABLE,
                [](uv_poll_t* p, int, int) { static_cast<SocketRing*>(p->data)->hop(0); });
  for (auto _ : state) active.lap([&] { uv_run(&loop.loop, UV_RUN_ONCE); });
  for (auto& p : polls) uv_close(reinterpret_cast<uv_handle_t*>(&p), nullptr);
  uv_run(&loop.loop, UV_RUN_NOWAIT);
  active.report(state);
  state.counters["idle_fds"] = idle;
}

// Watch an fd, let one loop iteration pass (the registration reaches the kernel), unwatch.
void watch_churn(benchmark::State& state) {
  Loop loop;
  IdleFds pair(1);
  if (!pair.ok(1)) return state.SkipWithError("socketpair failed");
  uv_poll_t poll;
  uv_poll_init(&loop.loop, &poll, pair.read_end(0));
  for (auto _ : state) {
    uv_poll_start(&poll, UV_READABLE, [](uv_poll_t*, int, int) {});
    uv_run(&loop.loop, UV_RUN_NOWAIT);
    uv_poll_stop(&poll);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&poll), nullptr);
  uv_run(&loop.loop, UV_RUN_NOWAIT);
  state.SetItemsProcessed(state.iterations());
}

// The same with a handle made and closed per watch (its close completes in the next iteration).
void watch_churn_fresh(benchmark::State& state) {
  Loop loop;
  IdleFds pair(1);
  if (!pair.ok(1)) return state.SkipWithError("socketpair failed");
  for (auto _ : state) {
    auto* poll = new uv_poll_t;
    uv_poll_init(&loop.loop, poll, pair.read_end(0));
    uv_poll_start(poll, UV_READABLE, [](uv_poll_t*, int, int) {});
    uv_run(&loop.loop, UV_RUN_NOWAIT);
    uv_poll_stop(poll);
    uv_close(reinterpret_cast<uv_handle_t*>(poll),
             [](uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); });
  }
  uv_run(&loop.loop, UV_RUN_NOWAIT);
  state.SetItemsProcessed(state.iterations());
}

const bool registered =
    register_raw("libuv", RawSuite{.batch = batch,
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

}  // namespace
}  // namespace weft::bench
