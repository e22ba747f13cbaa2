// Shared by weft's benchmarks: workload sizes (weft and the raw baselines do the same work),
// thread pinning for the cross-thread figures, and heap accounting for the memory figures.
//
// Every benchmark is named <operation>/<backend>/<weft|raw>, so a weft row pairs with its
// baseline by name (bench/report.py does).
#ifndef WEFT_BENCH_BENCH_SUPPORT_H_
#define WEFT_BENCH_BENCH_SUPPORT_H_

#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"

namespace weft::bench {

// Work per benchmark iteration.
inline constexpr int kBatch = 1000;        // call_soon_batch: callbacks queued, then run
inline constexpr int kChain = 1000;        // call_soon_chain: each callback queues the next
inline constexpr int kTimers = 1'000'000;  // timers_arm, timers_fire: libuv's million timers
inline constexpr int kTimerSpreadMs = 50;  // deadlines spread over [1, 50] ms
inline constexpr int kChurn = 100'000;     // timers_churn: arm + cancel
inline constexpr int kFlood = 100'000;     // xthread_flood: calls per iteration, all senders
inline constexpr int kFdHops = 10'000;     // fd_chain: readiness hops along the chain
inline constexpr int kTasks = 10'000;      // coro_spawn: tasks spawned and finished
inline constexpr int kAwaits = 100'000;    // coro_await_ready, coro_sleep0

// Pins the calling thread to one CPU (no-op if it cannot). Cross-thread figures are taken
// twice: both threads on CPU 0 ("same_cpu"), and on CPUs 0 and 1 ("cross_cpu").
inline void pin_to_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu % static_cast<int>(std::thread::hardware_concurrency()), &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}
inline void unpin() {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (unsigned i = 0; i < std::thread::hardware_concurrency(); ++i) CPU_SET(i, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// Bytes in use on the heap (glibc), for bytes-per-timer and bytes-per-task: the arena's blocks
// plus the large ones glibc maps separately (a million timers' arrays are such blocks).
inline std::size_t heap_in_use() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// A cheap shared count the benchmarks' callbacks bump, so the work cannot be optimized away
// and each benchmark can check it did what it claims.
struct Counter {
  std::int64_t value = 0;
};

// Fails the benchmark if it did not do all the work it claims.
inline void check(benchmark::State& state, std::int64_t got, std::int64_t want) {
  if (got != want) {
    state.SkipWithError(("did " + std::to_string(got) + " of " + std::to_string(want)).c_str());
  }
}

// Cross-thread round trips: `call(fn)` hands fn to the loop thread; this thread waits (futex,
// not spinning: on one CPU the loop could not run) until fn has run. Same driver for weft and
// every raw library.
template <typename Call>
void round_trips(benchmark::State& state, int caller_cpu, Call&& call) {
  if (caller_cpu >= 0) pin_to_cpu(caller_cpu);
  std::atomic<std::uint32_t> done{0};
  std::uint32_t expected = 0;
  for (auto _ : state) {
    call([&done] {
      done.fetch_add(1, std::memory_order_release);
      done.notify_one();
    });
    ++expected;
    for (std::uint32_t seen = done.load(std::memory_order_acquire); seen != expected;
         seen = done.load(std::memory_order_acquire)) {
      done.wait(seen);
    }
  }
  unpin();
  check(state, done.load(), state.iterations());
  state.SetItemsProcessed(state.iterations());
}

// A flood of kFlood calls per iteration from `senders` threads; every delivery is counted.
template <typename Call>
void flood(benchmark::State& state, int senders, Call&& call) {
  std::atomic<std::int64_t> delivered{0};
  std::atomic<std::int64_t> target{0};
  for (auto _ : state) {
    target.fetch_add(kFlood);
    std::vector<std::thread> threads;
    for (int t = 0; t < senders; ++t) {
      threads.emplace_back([&, t] {
        for (int i = t; i < kFlood; i += senders) {
          call([&delivered, &target] {
            // Wake the waiter now and then, and always at the end of the iteration.
            const std::int64_t n = delivered.fetch_add(1, std::memory_order_relaxed) + 1;
            if (n % 4096 == 0 || n == target.load(std::memory_order_relaxed)) {
              delivered.notify_one();
            }
          });
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    for (std::int64_t seen = delivered.load(); seen < target.load(); seen = delivered.load()) {
      delivered.wait(seen);
    }
  }
  check(state, delivered.load(), state.iterations() * kFlood);
  state.SetItemsProcessed(state.iterations() * kFlood);
}

// The ring of fd_chain (libevent's bench.c shape): a byte travels along n socketpairs. Each side
// watches read_end(i) its own way and calls hop(i) when it is readable.
class SocketRing {
 public:
  explicit SocketRing(int n) {
    for (int i = 0; i < n; ++i) {
      int pair[2];
      if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) return;
      reads_.push_back(pair[0]);
      writes_.push_back(pair[1]);
    }
  }
  ~SocketRing() {
    for (int fd : reads_) close(fd);
    for (int fd : writes_) close(fd);
  }
  SocketRing(const SocketRing&) = delete;
  SocketRing& operator=(const SocketRing&) = delete;

  // False if the descriptors ran out (raise the fd limit).
  bool ok(int n) const { return static_cast<int>(reads_.size()) == n; }
  int size() const { return static_cast<int>(reads_.size()); }
  int read_end(int i) const { return reads_[i]; }

  // What read end i's readiness callback does: take the byte and pass it on, until the lap ends.
  void hop(int i) {
    char byte;
    if (read(reads_[i], &byte, 1) != 1) return;
    if (++hops_ < target_) {
      [[maybe_unused]] ssize_t w = write(writes_[(i + 1) % writes_.size()], &byte, 1);
    }
  }
  // One benchmark iteration: kFdHops hops, `turn()` running one loop iteration at a time.
  template <typename Turn>
  void lap(Turn&& turn) {
    target_ = hops_ + kFdHops;
    [[maybe_unused]] ssize_t w = write(writes_[0], "x", 1);
    while (hops_ < target_) turn();
  }
  void report(benchmark::State& state) const {
    check(state, hops_, state.iterations() * kFdHops);
    state.SetItemsProcessed(state.iterations() * kFdHops);
  }

 private:
  std::vector<int> reads_, writes_;
  std::int64_t hops_ = 0;
  std::int64_t target_ = 0;
};

// The queue a raw library's loop thread drains when woken (libuv's uv_async_t coalesces
// wake-ups, libevent's event_active() too, so a queue is the idiom).
class CallQueue {
 public:
  void push(std::function<void()> fn) {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(fn));
  }
  void run_all() {
    std::vector<std::function<void()>> batch;
    {
      std::lock_guard lock(mu_);
      batch.swap(queue_);
    }
    for (auto& fn : batch) fn();
  }

 private:
  std::mutex mu_;
  std::vector<std::function<void()>> queue_;
};

// Cross-thread benchmarks over a raw library's LoopThread (constructed from the CPU to pin its
// loop to, -1 for none; call(fn) runs fn on the loop thread).
template <typename LoopThread>
void xthread_rtt_over(benchmark::State& state, int loop_cpu, int caller_cpu) {
  LoopThread loop(loop_cpu);
  round_trips(state, caller_cpu, [&](auto fn) { loop.call(std::move(fn)); });
}
template <typename LoopThread>
void xthread_flood_over(benchmark::State& state, int senders) {
  LoopThread loop(-1);
  flood(state, senders, [&](auto fn) { loop.call(std::move(fn)); });
}

// A raw library's baselines, one function per shape of work. register_raw() names them
// <operation>/<library>/raw, one per operation weft's side registers, with the same settings.
struct RawSuite {
  void (*batch)(benchmark::State&, int n);              // n callbacks queued, then run
  void (*chain)(benchmark::State&, int n);              // n links, each queuing the next
  void (*loop_turn)(benchmark::State&);                 // one idle iteration
  void (*timers)(benchmark::State&, bool time_arming);  // a million timers
  void (*timers_churn)(benchmark::State&);              // arm + cancel, inside a callback
  void (*xthread_rtt)(benchmark::State&, int loop_cpu, int caller_cpu);
  void (*xthread_flood)(benchmark::State&, int senders);
  void (*fd_chain)(benchmark::State&, int n);
  void (*one_turn)(benchmark::State&);        // one callback, one iteration
  void (*one_turn_fresh)(benchmark::State&);  // the same on a fresh loop
};

inline bool register_raw(const std::string& library, RawSuite raw) {
  auto add = [&](const std::string& op, auto fn) {
    return benchmark::RegisterBenchmark((op + "/" + library + "/raw").c_str(), fn);
  };
  add("call_soon_batch", [raw](benchmark::State& s) { raw.batch(s, kBatch); });
  add("call_soon_chain", [raw](benchmark::State& s) { raw.chain(s, kChain); });
  add("loop_turn", raw.loop_turn);
  add("timers_arm", [raw](benchmark::State& s) { raw.timers(s, true); })
      ->MeasureProcessCPUTime()
      ->Unit(benchmark::kMillisecond);
  add("timers_fire", [raw](benchmark::State& s) { raw.timers(s, false); })
      ->MeasureProcessCPUTime()
      ->Unit(benchmark::kMillisecond);
  add("timers_churn", raw.timers_churn);
  add("xthread_rtt_same_cpu", [raw](benchmark::State& s) {
    raw.xthread_rtt(s, 0, 0);
  })->UseRealTime();
  add("xthread_rtt_cross_cpu", [raw](benchmark::State& s) {
    raw.xthread_rtt(s, 0, 1);
  })->UseRealTime();
  for (int senders : {1, 2, 4}) {
    add("xthread_flood_" + std::to_string(senders), [raw, senders](benchmark::State& s) {
      raw.xthread_flood(s, senders);
    })->UseRealTime();
  }
  for (int n : {100, 1000}) {
    add("fd_chain_" + std::to_string(n), [raw, n](benchmark::State& s) { raw.fd_chain(s, n); });
  }
  // A task replaces a posted callback; a yield (sleep of zero) replaces a chain link.
  add("coro_spawn", [raw](benchmark::State& s) { raw.batch(s, kTasks); });
  add("coro_sleep0", [raw](benchmark::State& s) { raw.chain(s, kAwaits); });
  add("runner_blocking", raw.one_turn);
  add("runner_blocking_fresh", raw.one_turn_fresh);
  // The floor of the threaded and host runners: the library's own cross-thread round trip.
  add("runner_threaded", [raw](benchmark::State& s) { raw.xthread_rtt(s, -1, -1); })->UseRealTime();
  add("runner_host", [raw](benchmark::State& s) { raw.xthread_rtt(s, -1, -1); })->UseRealTime();
  return true;
}

}  // namespace weft::bench

#endif  // WEFT_BENCH_BENCH_SUPPORT_H_
