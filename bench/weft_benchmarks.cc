// weft's side of every benchmark, registered for each backend in the registry as
// <operation>/<backend>/weft. The raw baselines (bench/raw_<backend>.cc) do the same work with
// the library's own API. Each benchmark counts what it did and fails if the count is wrong.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_support.h"
#include "bench/pair.h"
#include "benchmark/benchmark.h"
#include "weft/core/backend_registry.h"
#include "weft/core/deferred.h"
#include "weft/core/io_handle.h"
#include "weft/core/reactor.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"
#include "weft/core/timer.h"
#include "weft/runners/guest_reactor.h"
#include "weft/runners/runner_registry.h"

namespace weft::bench {
namespace {

using namespace std::chrono_literals;

void run_until(Reactor& reactor, const Counter& counter, std::int64_t target) {
  while (counter.value < target) reactor.run_once(true);
}

// 1. call_soon: a batch queued from the loop thread, then run.
void call_soon_batch(benchmark::State& state, const std::string& backend) {
  auto reactor = make_reactor(backend);
  Counter counter;
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) reactor->call_soon([&counter] { ++counter.value; });
    run_until(*reactor, counter, counter.value + kBatch);
  }
  check(state, counter.value, state.iterations() * kBatch);
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// 1b. call_soon: a chain, each callback queues the next (one loop turn per link).
struct ChainState {
  Reactor* reactor;
  int left;
  Counter* counter;
};
void chain_link(ChainState* chain) {
  ++chain->counter->value;
  if (--chain->left > 0) chain->reactor->call_soon([chain] { chain_link(chain); });
}
void call_soon_chain(benchmark::State& state, const std::string& backend) {
  auto reactor = make_reactor(backend);
  Counter counter;
  for (auto _ : state) {
    ChainState chain{reactor.get(), kChain, &counter};
    reactor->call_soon([&chain] { chain_link(&chain); });
    run_until(*reactor, counter, counter.value + kChain);
  }
  check(state, counter.value, state.iterations() * kChain);
  state.SetItemsProcessed(state.iterations() * kChain);
}

// 2. One loop iteration with nothing to do.
void loop_turn(benchmark::State& state, const std::string& backend) {
  auto reactor = make_reactor(backend);
  for (auto _ : state) reactor->run_once(false);
  state.SetItemsProcessed(state.iterations());
}

// 3. Timers: a million timers with deadlines spread over 1..50 ms. CPU time per timer for
// arming (timers_arm) and for dispatching (timers_fire); heap bytes per pending timer.
std::vector<Duration> spread_delays() {
  std::vector<Duration> delays(kTimers);
  std::mt19937 rng(42);
  for (Duration& d : delays) d = std::chrono::milliseconds(1 + rng() % kTimerSpreadMs);
  return delays;
}

void timers(benchmark::State& state, const std::string& backend, bool time_arming) {
  static const std::vector<Duration> delays = spread_delays();
  auto reactor = make_reactor(backend);
  Counter counter;
  auto arm_all = [&] {
    for (int i = 0; i < kTimers; ++i) {
      reactor->call_later(delays[i], [&counter] { ++counter.value; });
    }
  };
  // One untimed round first, as on the raw sides: the timer structures grow from empty here,
  // and every measured iteration reuses them. Its growth is the memory per pending timer.
  const std::size_t heap_before = heap_in_use();
  arm_all();
  const double bytes = static_cast<double>(heap_in_use() - heap_before) / kTimers;
  run_until(*reactor, counter, kTimers);
  counter.value = 0;
  for (auto _ : state) {
    if (!time_arming) state.PauseTiming();
    arm_all();
    if (time_arming) {
      state.PauseTiming();
    } else {
      state.ResumeTiming();
    }
    run_until(*reactor, counter, counter.value + kTimers);
    if (time_arming) state.ResumeTiming();
  }
  check(state, counter.value, state.iterations() * kTimers);
  state.SetItemsProcessed(state.iterations() * kTimers);
  state.counters["bytes_per_timer"] = bytes;
}
void timers_arm(benchmark::State& state, const std::string& backend) {
  timers(state, backend, true);
}
void timers_fire(benchmark::State& state, const std::string& backend) {
  timers(state, backend, false);
}

// 3b. Arm and cancel, over and over, inside a callback (where timeouts come and go).
void timers_churn(benchmark::State& state, const std::string& backend) {
  auto reactor = make_reactor(backend);
  std::int64_t cancelled = 0;
  Counter done;
  for (auto _ : state) {
    reactor->call_soon([&] {
      for (int i = 0; i < kChurn; ++i) {
        TimerHandle timer =
            reactor->call_later(std::chrono::milliseconds(1 + i % kTimerSpreadMs), [] {});
        cancelled += timer.cancel();
      }
      ++done.value;
    });
    run_until(*reactor, done, done.value + 1);
  }
  check(state, cancelled, state.iterations() * kChurn);
  state.SetItemsProcessed(state.iterations() * kChurn);
}

// 3c. The same with one re-armable Timer (core/timer.h): the raw rows' mechanism (one
// uv_timer_t, one libevent event, one steady_timer started and stopped again and again).
void timer_rearm(benchmark::State& state, const std::string& backend) {
  auto reactor = make_reactor(backend);
  Timer timer(*reactor, [] {});
  std::int64_t stopped = 0;
  Counter done;
  for (auto _ : state) {
    reactor->call_soon([&] {
      for (int i = 0; i < kChurn; ++i) {
        timer.start_after(std::chrono::milliseconds(1 + i % kTimerSpreadMs));
        stopped += timer.stop();
      }
      ++done.value;
    });
    run_until(*reactor, done, done.value + 1);
  }
  check(state, stopped, state.iterations() * kChurn);
  state.SetItemsProcessed(state.iterations() * kChurn);
}

// 4. Cross-thread: another thread hands the loop a callback and waits for it to run.
class LoopThread {
 public:
  LoopThread(const std::string& backend, int cpu) : reactor_(make_reactor(backend)) {
    thread_ = std::thread([this, cpu] {
      if (cpu >= 0) pin_to_cpu(cpu);
      reactor_->run();
    });
  }
  ~LoopThread() {
    reactor_->stop();
    thread_.join();
  }
  Reactor& reactor() { return *reactor_; }

 private:
  std::unique_ptr<Reactor> reactor_;
  std::thread thread_;
};

void xthread_rtt(benchmark::State& state, const std::string& backend, int loop_cpu,
                 int caller_cpu) {
  LoopThread loop(backend, loop_cpu);
  round_trips(state, caller_cpu, [&](auto fn) { loop.reactor().call_from_thread(std::move(fn)); });
}
void xthread_rtt_same_cpu(benchmark::State& state, const std::string& backend) {
  xthread_rtt(state, backend, 0, 0);
}
void xthread_rtt_cross_cpu(benchmark::State& state, const std::string& backend) {
  xthread_rtt(state, backend, 0, 1);
}

// 4b. A flood of calls from 1, 2 or 4 threads; every delivery counted.
void xthread_flood(benchmark::State& state, const std::string& backend, int senders) {
  LoopThread loop(backend, -1);
  flood(state, senders, [&](auto fn) { loop.reactor().call_from_thread(std::move(fn)); });
}

// 5. fd readiness: N socketpairs in a ring, one byte travelling along it (libevent's bench.c).
void fd_chain(benchmark::State& state, const std::string& backend, int n) {
  auto reactor = make_reactor(backend);
  SocketRing ring(n);
  if (!ring.ok(n)) return state.SkipWithError("socketpair failed (raise the fd limit)");
  std::vector<Watch> watches;
  for (int i = 0; i < n; ++i) {
    watches.push_back(reactor->watch_readable(ring.read_end(i), [&ring, i] { ring.hop(i); }));
  }
  for (auto _ : state) ring.lap([&] { reactor->run_once(true); });
  for (Watch& watch : watches) watch.cancel();
  ring.report(state);
}

// 6. Coroutines.
Task<void> trivial(Counter& counter) {
  ++counter.value;
  co_return;
}

void coro_spawn(benchmark::State& state, const std::string& backend) {
  auto reactor = make_reactor(backend);
  Counter counter;
  for (auto _ : state) {
    for (int i = 0; i < kTasks; ++i) spawn(*reactor, trivial(counter));
    run_until(*reactor, counter, counter.value + kTasks);
  }
  check(state, counter.value, state.iterations() * kTasks);
  state.SetItemsProcessed(state.iterations() * kTasks);
}

Task<void> await_ready_loop(Counter& counter) {
  Deferred<int> ready;
  ready.callback(1);
  for (int i = 0; i < kAwaits; ++i) counter.value += co_await ready;
}
void coro_await_ready(benchmark::State& state, const std::string& backend) {
  auto reactor = make_reactor(backend);
  Counter counter;
  for (auto _ : state) {
    spawn(*reactor, await_ready_loop(counter));
    run_until(*reactor, counter, counter.value + kAwaits);
  }
  check(state, counter.value, state.iterations() * kAwaits);
  state.SetItemsProcessed(state.iterations() * kAwaits);
}

Task<void> sleep0_loop(Counter& counter) {
  for (int i = 0; i < kAwaits; ++i) {
    co_await sleep(Duration::zero());
    ++counter.value;
  }
}
void coro_sleep0(benchmark::State& state, const std::string& backend) {
  auto reactor = make_reactor(backend);
  Counter counter;
  for (auto _ : state) {
    spawn(*reactor, sleep0_loop(counter));
    run_until(*reactor, counter, counter.value + kAwaits);
  }
  check(state, counter.value, state.iterations() * kAwaits);
  state.SetItemsProcessed(state.iterations() * kAwaits);
}

// Memory: heap bytes per suspended task (spawned, started, sleeping).
Task<void> sleeper() { co_await sleep(1h); }
void coro_suspended_bytes(benchmark::State& state, const std::string& backend) {
  double bytes = 0;
  for (auto _ : state) {
    auto reactor = make_reactor(backend);
    const std::size_t before = heap_in_use();
    for (int i = 0; i < kTasks; ++i) spawn(*reactor, sleeper());
    reactor->run_once(false);  // every task starts and suspends in its sleep
    bytes = static_cast<double>(heap_in_use() - before) / kTasks;
    if (reactor->counts().tasks != static_cast<std::size_t>(kTasks)) state.SkipWithError("tasks");
  }
  state.counters["bytes_per_task"] = bytes;
}

// 7. Runners: run() of a trivial task.
Task<int> one() { co_return 1; }

void runner_blocking(benchmark::State& state, const std::string& backend) {
  auto runner = make_runner("blocking", {.backend = backend});
  std::int64_t sum = 0;
  for (auto _ : state) sum += runner->run(one());
  check(state, sum, state.iterations());
}
void runner_blocking_fresh(benchmark::State& state, const std::string& backend) {
  std::int64_t sum = 0;
  for (auto _ : state) sum += make_runner("blocking", {.backend = backend})->run(one());
  check(state, sum, state.iterations());
}
// Threaded run() of a trivial task, each timed (p50/p99), with `neighbours` keeping every CPU
// busy beside it (runner_threaded_busy_*).
void runner_threaded_with(benchmark::State& state, const std::string& backend,
                          BusyNeighbours::Kind neighbours) {
  auto runner = make_runner("threaded", {.backend = backend});
  BusyNeighbours busy(neighbours);
  Latencies latencies;
  std::int64_t sum = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    sum += runner->run(one());
    latencies.add(std::chrono::steady_clock::now() - start);
  }
  check(state, sum, state.iterations());
  state.SetItemsProcessed(state.iterations());
  latencies.report(state);
}
void runner_threaded(benchmark::State& state, const std::string& backend) {
  runner_threaded_with(state, backend, BusyNeighbours::Kind::kNone);
}

// Eight threads calling run() on one threaded runner at once.
void runner_threaded_submitters(benchmark::State& state, const std::string& backend) {
  auto runner = make_runner("threaded", {.backend = backend});
  std::int64_t sum = 0;
  std::mutex sum_mu;
  Latencies all;
  for (auto _ : state) {
    std::vector<std::thread> threads;
    std::vector<Latencies> per_thread(kSubmitters);
    for (int t = 0; t < kSubmitters; ++t) {
      threads.emplace_back([&, t] {
        std::int64_t mine = 0;
        per_thread[t].reserve(kSubmitterCalls);
        for (int i = 0; i < kSubmitterCalls; ++i) {
          const auto start = std::chrono::steady_clock::now();
          mine += runner->run(one());
          per_thread[t].add(std::chrono::steady_clock::now() - start);
        }
        std::lock_guard lock(sum_mu);
        sum += mine;
      });
    }
    for (std::thread& thread : threads) thread.join();
    for (Latencies& l : per_thread) all.merge(l);
  }
  check(state, sum, state.iterations() * kSubmitters * kSubmitterCalls);
  state.SetItemsProcessed(state.iterations() * kSubmitters * kSubmitterCalls);
  all.report(state);
}

// 8. A reactor made and destroyed.
void reactor_create_destroy(benchmark::State& state, const std::string& backend) {
  for (auto _ : state) {
    auto reactor = make_reactor(backend);
    benchmark::DoNotOptimize(reactor.get());
  }
  state.SetItemsProcessed(state.iterations());
}

// 9. Heap bytes and descriptors per watched fd (weft watches its own duplicate of each fd).
void watch_memory(benchmark::State& state, const std::string& backend) {
  double bytes = 0, fds = 0;
  for (auto _ : state) {
    auto reactor = make_reactor(backend);
    IdleFds pairs(kWatchMemoryFds);
    if (!pairs.ok(kWatchMemoryFds)) return state.SkipWithError("socketpair failed");
    const std::size_t heap_before = heap_in_use();
    const int fds_before = open_descriptors();
    std::vector<Watch> watches;
    watches.reserve(kWatchMemoryFds);
    for (int i = 0; i < kWatchMemoryFds; ++i) {
      watches.push_back(reactor->watch_readable(pairs.read_end(i), [] {}));
    }
    reactor->run_once(false);  // libuv registers with the kernel in its next iteration
    bytes = static_cast<double>(heap_in_use() - heap_before) / kWatchMemoryFds;
    fds = static_cast<double>(open_descriptors() - fds_before) / kWatchMemoryFds;
    for (Watch& watch : watches) watch.cancel();
  }
  state.counters["bytes_per_watch"] = bytes;
  state.counters["fds_per_watch"] = fds;
}

// 10. One active fd beside `idle` watched fds that never fire: does a turn stay flat?
void fd_turn_idle(benchmark::State& state, const std::string& backend, int idle) {
  auto reactor = make_reactor(backend);
  IdleFds pairs(idle);
  SocketRing active(1);
  if (!pairs.ok(idle) || !active.ok(1)) return state.SkipWithError("socketpair failed");
  std::vector<Watch> watches;
  watches.reserve(idle + 1);
  for (int i = 0; i < idle; ++i) {
    watches.push_back(reactor->watch_readable(pairs.read_end(i), [] {}));
  }
  watches.push_back(reactor->watch_readable(active.read_end(0), [&active] { active.hop(0); }));
  for (auto _ : state) active.lap([&] { reactor->run_once(true); });
  for (Watch& watch : watches) watch.cancel();
  active.report(state);
  state.counters["idle_fds"] = idle;
}

// 11. Watch an fd, one turn, unwatch.
void watch_churn(benchmark::State& state, const std::string& backend) {
  auto reactor = make_reactor(backend);
  IdleFds pair(1);
  if (!pair.ok(1)) return state.SkipWithError("socketpair failed");
  for (auto _ : state) {
    Watch watch = reactor->watch_readable(pair.read_end(0), [] {});
    reactor->run_once(false);
    watch.cancel();
  }
  state.SetItemsProcessed(state.iterations());
}

// The same cycle on a descriptor registered once (IoHandle, core/io_handle.h): the interest is
// set and cleared, as the raw rows start and stop one handle.
void io_handle_churn(benchmark::State& state, const std::string& backend) {
  auto reactor = make_reactor(backend);
  IdleFds pair(1);
  if (!pair.ok(1)) return state.SkipWithError("socketpair failed");
  IoHandle handle(*reactor, pair.read_end(0), [](IoEvents) {});
  for (auto _ : state) {
    handle.set_interest(IoEvents::kReadable);
    reactor->run_once(false);
    handle.set_interest(IoEvents::kNone);
  }
  state.SetItemsProcessed(state.iterations());
}

// The host: a minimal poll() loop on its own thread, weft its guest.
class PollHost {
 public:
  explicit PollHost(const std::string& backend) : stop_(eventfd(0, EFD_CLOEXEC)) {
    std::atomic<GuestReactor*> ready{nullptr};
    thread_ = std::thread([&, backend] {
      GuestReactor guest(backend);
      guest_ = &guest;
      ready.store(&guest);
      ready.notify_one();
      for (;;) {
        pollfd fds[2] = {{guest.fd(), POLLIN, 0}, {stop_, POLLIN, 0}};
        int timeout_ms = -1;
        if (auto timeout = guest.timeout()) {
          timeout_ms = static_cast<int>(std::min<std::int64_t>(
              std::chrono::ceil<std::chrono::milliseconds>(*timeout).count(), INT_MAX));
        }
        poll(fds, 2, timeout_ms);
        if (fds[1].revents) break;
        guest.step();
      }
    });
    ready.wait(nullptr);
  }
  ~PollHost() {
    const std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(stop_, &one, sizeof one);
    thread_.join();
    close(stop_);
  }
  Reactor& reactor() { return guest_->reactor(); }
  std::thread::id id() const { return thread_.get_id(); }

 private:
  int stop_;
  GuestReactor* guest_ = nullptr;
  std::thread thread_;
};

void runner_host(benchmark::State& state, const std::string& backend) {
  PollHost host(backend);
  auto runner = make_runner("host", {.host = &host.reactor(), .host_thread = host.id()});
  std::int64_t sum = 0;
  for (auto _ : state) sum += runner->run(one());
  check(state, sum, state.iterations());
}

void register_weft_benchmarks() {
  using Kind = BusyNeighbours::Kind;
  // Every library weft ships, by name (its default mechanism): a backend built as a plugin is
  // loaded by its first make_reactor(), so the registry may not list it yet. A backend this
  // build lacks fails its rows with the reason.
  for (const std::string b : {"libuv", "libevent", "asio"}) {
    // weft's side, then every raw side of the same operation and library (bench/pair.h).
    auto add = [&](const std::string& op, auto fn, const Settings& settings = {}) {
      register_pair(
          op, b,
          [fn, b](benchmark::State& state) {
            try {
              fn(state, b);
            } catch (const std::exception& e) {
              state.SkipWithError(e.what());
            }
          },
          settings);
    };
    const Settings cpu_ms = [](benchmark::internal::Benchmark* bench) {
      // Each iteration arms a million timers and waits up to 50 ms for them.
      bench->MeasureProcessCPUTime()->Unit(benchmark::kMillisecond)->Iterations(2);
    };
    const Settings real = [](benchmark::internal::Benchmark* bench) { bench->UseRealTime(); };
    const Settings once = [](benchmark::internal::Benchmark* bench) { bench->Iterations(1); };
    add("call_soon_batch", call_soon_batch);
    add("call_soon_chain", call_soon_chain);
    add("loop_turn", loop_turn);
    add("timers_arm", timers_arm, cpu_ms);
    add("timers_fire", timers_fire, cpu_ms);
    add("timers_churn", timers_churn);
    add("timer_rearm", timer_rearm);
    add("xthread_rtt_same_cpu", xthread_rtt_same_cpu, real);
    add("xthread_rtt_cross_cpu", xthread_rtt_cross_cpu, real);
    for (int senders : {1, 2, 4}) {
      add(
          "xthread_flood_" + std::to_string(senders),
          [senders](benchmark::State& s, const std::string& b) { xthread_flood(s, b, senders); },
          real);
    }
    for (int n : {100, 1000}) {
      add("fd_chain_" + std::to_string(n),
          [n](benchmark::State& s, const std::string& b) { fd_chain(s, b, n); });
    }
    add("coro_spawn", coro_spawn);
    add("coro_await_ready", coro_await_ready);
    add("coro_sleep0", coro_sleep0);
    add("coro_suspended_bytes", coro_suspended_bytes, once);
    add("runner_blocking", runner_blocking);
    add("runner_blocking_fresh", runner_blocking_fresh);
    add("runner_threaded", runner_threaded, real);
    add("runner_host", runner_host, real);
    add("runner_threaded_8_submitters", runner_threaded_submitters, real);
    // A fixed count, so that a p99 has enough samples whatever the waits cost.
    const Settings busy = [](benchmark::internal::Benchmark* bench) {
      bench->UseRealTime()->Iterations(2000);
    };
    add(
        "runner_threaded_busy_cpu",
        [](benchmark::State& s, const std::string& b) { runner_threaded_with(s, b, Kind::kCpu); },
        busy);
    add(
        "runner_threaded_busy_syscalls",
        [](benchmark::State& s, const std::string& b) {
          runner_threaded_with(s, b, Kind::kSyscalls);
        },
        busy);
    add("reactor_create_destroy", reactor_create_destroy);
    add("watch_memory", watch_memory, once);
    add("fd_turn_idle0", [](benchmark::State& s, const std::string& b) { fd_turn_idle(s, b, 0); });
    add("fd_turn_idle_many",
        [](benchmark::State& s, const std::string& b) { fd_turn_idle(s, b, idle_fd_count()); });
    add("watch_churn", watch_churn);
    add("io_handle_churn", io_handle_churn);
  }
}

const bool registered = at_startup(register_weft_benchmarks);

}  // namespace
}  // namespace weft::bench
