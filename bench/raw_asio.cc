// The raw Boost.Asio baselines: the same work as bench/weft_benchmarks.cc, written the
// idiomatic Asio way, registered as <operation>/asio/raw.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.h"
#include "bench/raw_task.h"
#include "benchmark/benchmark.h"

namespace weft::bench {
namespace {

namespace asio = boost::asio;

// A context as an application keeps one: concurrency hint 1, kept alive by a work guard, and
// with I/O objects, so its reactor (epoll) exists and is polled as it would be in any program
// that does I/O. (An io_context that never made an I/O object never polls the kernel at all.)
// kHint: 1 (one thread runs it; Asio still locks its queues) or
// BOOST_ASIO_CONCURRENCY_HINT_UNSAFE (no locking at all; the "raw_unsafe" rows). weft's
// backend uses 1, since other threads post to it.
constexpr int kUnsafe = BOOST_ASIO_CONCURRENCY_HINT_UNSAFE;
template <int kHint = 1>
struct Context {
  asio::io_context context{kHint};
  asio::executor_work_guard<asio::io_context::executor_type> guard{context.get_executor()};
  asio::steady_timer io_object{context};
  void run_until(const Counter& counter, std::int64_t target) {
    while (counter.value < target) context.run_one();
  }
};

// The same mechanism as weft's: a user-level queue of (function, argument) drained by one
// posted handler per batch.
template <int kHint>
void batch_queue(benchmark::State& state, int n) {
  using Fn = void (*)(void*);
  Context<kHint> ctx;
  Counter counter;
  std::vector<std::pair<Fn, void*>> items, running;
  auto bump = [](void* c) { ++static_cast<Counter*>(c)->value; };
  for (auto _ : state) {
    for (int i = 0; i < n; ++i) {
      if (items.empty()) {
        asio::post(ctx.context, [&] {
          running.swap(items);
          for (const auto& [fn, arg] : running) fn(arg);
          running.clear();
        });
      }
      items.push_back({bump, &counter});
    }
    ctx.run_until(counter, counter.value + n);
  }
  check(state, counter.value, state.iterations() * n);
  state.SetItemsProcessed(state.iterations() * n);
}

// Asio's own way: asio::post per callback.
template <int kHint>
void batch(benchmark::State& state, int n) {
  Context<kHint> ctx;
  Counter counter;
  for (auto _ : state) {
    for (int i = 0; i < n; ++i) asio::post(ctx.context, [&counter] { ++counter.value; });
    ctx.run_until(counter, counter.value + n);
  }
  check(state, counter.value, state.iterations() * n);
  state.SetItemsProcessed(state.iterations() * n);
}

struct Chain {
  asio::io_context* context;
  int left;
  Counter* counter;
  void link() {
    ++counter->value;
    if (--left > 0) asio::post(*context, [this] { link(); });
  }
};
template <int kHint>
void chain(benchmark::State& state, int n) {
  Context<kHint> ctx;
  Counter counter;
  for (auto _ : state) {
    Chain c{&ctx.context, n, &counter};
    asio::post(ctx.context, [&c] { c.link(); });
    ctx.run_until(counter, counter.value + n);
  }
  check(state, counter.value, state.iterations() * n);
  state.SetItemsProcessed(state.iterations() * n);
}

template <int kHint>
void loop_turn(benchmark::State& state) {
  Context<kHint> ctx;
  for (auto _ : state) ctx.context.poll_one();
  state.SetItemsProcessed(state.iterations());
}

// A million steady_timers (made beforehand), each with one async_wait.
template <int kHint>
void timers(benchmark::State& state, bool time_arming) {
  Context<kHint> ctx;
  Counter counter;
  std::vector<std::optional<asio::steady_timer>> handles(kTimers);
  std::vector<std::chrono::milliseconds> delays(kTimers);
  std::mt19937 rng(42);
  for (int i = 0; i < kTimers; ++i) {
    handles[i].emplace(ctx.context);
    delays[i] = std::chrono::milliseconds(1 + rng() % kTimerSpreadMs);
  }
  double bytes = 0;
  auto arm_all = [&] {
    for (int i = 0; i < kTimers; ++i) {
      handles[i]->expires_after(delays[i]);
      handles[i]->async_wait([&counter](boost::system::error_code) { ++counter.value; });
    }
  };
  // One untimed round first, as on weft's side: both sides measure warm structures.
  arm_all();
  ctx.run_until(counter, kTimers);
  counter.value = 0;
  for (auto _ : state) {
    if (!time_arming) state.PauseTiming();
    const std::size_t heap_before = heap_in_use();
    arm_all();
    bytes = sizeof(asio::steady_timer) + static_cast<double>(heap_in_use() - heap_before) / kTimers;
    if (time_arming) {
      state.PauseTiming();
    } else {
      state.ResumeTiming();
    }
    ctx.run_until(counter, counter.value + kTimers);
    if (time_arming) state.ResumeTiming();
  }
  check(state, counter.value, state.iterations() * kTimers);
  state.SetItemsProcessed(state.iterations() * kTimers);
  state.counters["bytes_per_timer"] = bytes;
}

template <int kHint>
void timers_churn(benchmark::State& state) {
  Context<kHint> ctx;
  asio::steady_timer timer(ctx.context);
  std::int64_t cancelled = 0;
  Counter done;
  for (auto _ : state) {
    asio::post(ctx.context, [&] {
      for (int i = 0; i < kChurn; ++i) {
        timer.expires_after(std::chrono::milliseconds(1 + i % kTimerSpreadMs));
        timer.async_wait([](boost::system::error_code) {});
        cancelled += timer.cancel();
      }
      ++done.value;
    });
    ctx.run_until(done, done.value + 1);
    ctx.context.poll();  // the cancelled waits complete with operation_aborted
  }
  check(state, cancelled, state.iterations() * kChurn);
  state.SetItemsProcessed(state.iterations() * kChurn);
}

// Cross-thread: asio::post from another thread.
class LoopThread {
 public:
  explicit LoopThread(int cpu) {
    thread_ = std::thread([this, cpu] {
      if (cpu >= 0) pin_to_cpu(cpu);
      ctx_.context.run();
    });
  }
  ~LoopThread() {
    ctx_.guard.reset();
    ctx_.context.stop();
    thread_.join();
  }
  template <typename F>
  void call(F&& fn) {
    asio::post(ctx_.context, std::forward<F>(fn));
  }

 private:
  Context<> ctx_;
  std::thread thread_;
};

// Each descriptor re-arms its wait after every readiness.
void arm(asio::posix::stream_descriptor& descriptor, SocketRing& ring, int i) {
  descriptor.async_wait(asio::posix::stream_descriptor::wait_read,
                        [&descriptor, &ring, i](boost::system::error_code error) {
                          if (error) return;
                          ring.hop(i);
                          arm(descriptor, ring, i);
                        });
}
template <int kHint>
void fd_chain(benchmark::State& state, int n) {
  Context<kHint> ctx;
  SocketRing ring(n);
  if (!ring.ok(n)) return state.SkipWithError("socketpair failed (raise the fd limit)");
  std::vector<std::unique_ptr<asio::posix::stream_descriptor>> descriptors;
  for (int i = 0; i < n; ++i) {
    descriptors.push_back(
        std::make_unique<asio::posix::stream_descriptor>(ctx.context, ring.read_end(i)));
    arm(*descriptors.back(), ring, i);
  }
  for (auto _ : state) ring.lap([&] { ctx.context.run_one(); });
  for (auto& d : descriptors) d->cancel();
  ctx.context.poll();
  for (auto& d : descriptors) d->release();  // the ring closes its descriptors
  ring.report(state);
}

template <int kHint>
void one_turn(benchmark::State& state) {
  Context<kHint> ctx;
  Counter counter;
  for (auto _ : state) {
    asio::post(ctx.context, [&counter] { ++counter.value; });
    ctx.run_until(counter, counter.value + 1);
  }
  check(state, counter.value, state.iterations());
}

template <int kHint>
void one_turn_fresh(benchmark::State& state) {
  Counter counter;
  for (auto _ : state) {
    Context<kHint> ctx;
    asio::post(ctx.context, [&counter] { ++counter.value; });
    ctx.run_until(counter, counter.value + 1);
  }
  check(state, counter.value, state.iterations());
}

// One turn whose handler resumes a coroutine task (bench/raw_task.h)...
void one_task(benchmark::State& state) {
  Context<1> ctx;
  one_task_per_turn(
      state,
      [&](void* frame) { asio::post(ctx.context, [frame] { RawTask<int>::resume(frame); }); },
      [&](const Counter& counter, std::int64_t target) { ctx.run_until(counter, target); });
}

// ... and Asio's own coroutine: an awaitable started with co_spawn, its result delivered to a
// completion handler.
asio::awaitable<int> awaitable_one(std::int64_t& runs) {
  ++runs;
  co_return 1;
}
void one_co_spawn(benchmark::State& state) {
  Context<1> ctx;
  Counter counter;
  std::int64_t sum = 0;
  std::int64_t runs = 0;
  for (auto _ : state) {
    asio::co_spawn(ctx.context, awaitable_one(runs), [&](std::exception_ptr error, int value) {
      if (error) std::rethrow_exception(error);
      sum += value;
      ++counter.value;
    });
    ctx.run_until(counter, counter.value + 1);
  }
  check(state, sum, state.iterations());
  check(state, runs, state.iterations());
}

void runner_floor(benchmark::State& state, BusyNeighbours::Kind neighbours) {
  runner_floor_over<LoopThread>(state, neighbours);
}
void submitters(benchmark::State& state, int n) { submitters_over<LoopThread>(state, n); }

// A context as weft's backend makes one: hint 1, a work guard, an I/O object (so its epoll
// reactor exists).
template <int kHint>
void create_destroy(benchmark::State& state) {
  for (auto _ : state) {
    Context<kHint> ctx;
    benchmark::DoNotOptimize(&ctx);
  }
  state.SetItemsProcessed(state.iterations());
}

// Each watched fd is a stream_descriptor with a wait pending (released, not closed, after).
void watch_memory(benchmark::State& state) {
  double bytes = 0, fds = 0;
  for (auto _ : state) {
    Context<> ctx;
    IdleFds pairs(kWatchMemoryFds);
    if (!pairs.ok(kWatchMemoryFds)) return state.SkipWithError("socketpair failed");
    const std::size_t heap_before = heap_in_use();
    const int fds_before = open_descriptors();
    std::vector<std::unique_ptr<asio::posix::stream_descriptor>> descriptors;
    descriptors.reserve(kWatchMemoryFds);
    for (int i = 0; i < kWatchMemoryFds; ++i) {
      descriptors.push_back(
          std::make_unique<asio::posix::stream_descriptor>(ctx.context, pairs.read_end(i)));
      descriptors.back()->async_wait(asio::posix::stream_descriptor::wait_read,
                                     [](boost::system::error_code) {});
    }
    bytes = static_cast<double>(heap_in_use() - heap_before) / kWatchMemoryFds;
    fds = static_cast<double>(open_descriptors() - fds_before) / kWatchMemoryFds;
    for (auto& d : descriptors) d->cancel();
    ctx.context.poll();
    for (auto& d : descriptors) d->release();
  }
  state.counters["bytes_per_watch"] = bytes;
  state.counters["fds_per_watch"] = fds;
}

void fd_turn_idle(benchmark::State& state, int idle) {
  Context<> ctx;
  IdleFds pairs(idle);
  SocketRing active(1);
  if (!pairs.ok(idle) || !active.ok(1)) return state.SkipWithError("socketpair failed");
  std::vector<std::unique_ptr<asio::posix::stream_descriptor>> descriptors;
  for (int i = 0; i < idle; ++i) {
    descriptors.push_back(
        std::make_unique<asio::posix::stream_descriptor>(ctx.context, pairs.read_end(i)));
    descriptors.back()->async_wait(asio::posix::stream_descriptor::wait_read,
                                   [](boost::system::error_code) {});
  }
  descriptors.push_back(
      std::make_unique<asio::posix::stream_descriptor>(ctx.context, active.read_end(0)));
  arm(*descriptors.back(), active, 0);
  for (auto _ : state) active.lap([&] { ctx.context.run_one(); });
  for (auto& d : descriptors) d->cancel();
  ctx.context.poll();
  for (auto& d : descriptors) d->release();
  active.report(state);
  state.counters["idle_fds"] = idle;
}

// A wait started on a descriptor, one poll, the wait cancelled (its handler runs aborted).
void watch_churn(benchmark::State& state) {
  Context<> ctx;
  IdleFds pair(1);
  if (!pair.ok(1)) return state.SkipWithError("socketpair failed");
  asio::posix::stream_descriptor descriptor(ctx.context, pair.read_end(0));
  std::int64_t aborted = 0;
  for (auto _ : state) {
    descriptor.async_wait(asio::posix::stream_descriptor::wait_read,
                          [&aborted](boost::system::error_code error) { aborted += !!error; });
    ctx.context.poll_one();
    descriptor.cancel();
    ctx.context.poll_one();
  }
  descriptor.release();
  check(state, aborted, state.iterations());
  state.SetItemsProcessed(state.iterations());
}

// The same with a descriptor object registered and released per watch.
void watch_churn_fresh(benchmark::State& state) {
  Context<> ctx;
  IdleFds pair(1);
  if (!pair.ok(1)) return state.SkipWithError("socketpair failed");
  std::int64_t aborted = 0;
  for (auto _ : state) {
    asio::posix::stream_descriptor descriptor(ctx.context, pair.read_end(0));
    descriptor.async_wait(asio::posix::stream_descriptor::wait_read,
                          [&aborted](boost::system::error_code error) { aborted += !!error; });
    ctx.context.poll_one();
    descriptor.cancel();
    ctx.context.poll_one();
    descriptor.release();  // deregisters; the fd stays open
  }
  check(state, aborted, state.iterations());
  state.SetItemsProcessed(state.iterations());
}

const bool registered =
    register_raw("asio", RawSuite{.batch = batch_queue<1>,
                                  .chain = chain<1>,
                                  .loop_turn = loop_turn<1>,
                                  .timers = timers<1>,
                                  .timers_churn = timers_churn<1>,
                                  .xthread_rtt = xthread_rtt_over<LoopThread>,
                                  .xthread_flood = xthread_flood_over<LoopThread>,
                                  .fd_chain = fd_chain<1>,
                                  .one_turn = one_turn<1>,
                                  .one_turn_fresh = one_turn_fresh<1>,
                                  .one_task = one_task,
                                  .runner_floor = runner_floor,
                                  .submitters = submitters,
                                  .create_destroy = create_destroy<1>,
                                  .watch_memory = watch_memory,
                                  .fd_turn_idle = fd_turn_idle,
                                  .watch_churn = watch_churn,
                                  .watch_churn_fresh = watch_churn_fresh});

// The other idioms: asio::post per callback beside the queue; every single-threaded row again
// with the unsafe concurrency hint (no locking; weft cannot use it, other threads post to it).
bool register_idioms() {
  auto add = [](const std::string& op, const std::string& side, BenchFn fn) {
    add_raw(op, "asio", side, std::move(fn));
  };
  add("call_soon_batch", "raw_post", [](benchmark::State& s) { batch<1>(s, kBatch); });
  add("coro_spawn", "raw_post", [](benchmark::State& s) { batch<1>(s, kTasks); });
  add("call_soon_batch", "raw_unsafe",
      [](benchmark::State& s) { batch_queue<kUnsafe>(s, kBatch); });
  add("call_soon_chain", "raw_unsafe", [](benchmark::State& s) { chain<kUnsafe>(s, kChain); });
  add("coro_sleep0", "raw_unsafe", [](benchmark::State& s) { chain<kUnsafe>(s, kAwaits); });
  add("loop_turn", "raw_unsafe", loop_turn<kUnsafe>);
  add("timers_arm", "raw_unsafe", [](benchmark::State& s) { timers<kUnsafe>(s, true); });
  add("timers_fire", "raw_unsafe", [](benchmark::State& s) { timers<kUnsafe>(s, false); });
  add("timers_churn", "raw_unsafe", timers_churn<kUnsafe>);
  add("fd_chain_100", "raw_unsafe", [](benchmark::State& s) { fd_chain<kUnsafe>(s, 100); });
  add("fd_chain_1000", "raw_unsafe", [](benchmark::State& s) { fd_chain<kUnsafe>(s, 1000); });
  add("runner_blocking", "raw_unsafe", one_turn<kUnsafe>);
  add("runner_blocking", "raw_co_spawn", one_co_spawn);
  add("runner_blocking_fresh", "raw_unsafe", one_turn_fresh<kUnsafe>);
  add("reactor_create_destroy", "raw_unsafe", create_destroy<kUnsafe>);
  return true;
}
const bool registered_idioms = register_idioms();

}  // namespace
}  // namespace weft::bench
