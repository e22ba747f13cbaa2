// Shared by weft's benchmarks: workload sizes (weft and the raw baselines do the same work),
// thread pinning for the cross-thread figures, and heap accounting for the memory figures.
//
// Every benchmark is named <operation>/<backend>/<weft|raw|raw_idiom>, registered in pairs
// (bench/pair.h), so a weft row pairs with its baseline by name (bench/report.py does).
#ifndef WEFT_BENCH_BENCH_SUPPORT_H_
#define WEFT_BENCH_BENCH_SUPPORT_H_

#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/pair.h"
#include "benchmark/benchmark.h"
#include "weft/core/detail/recycler.h"

namespace weft::bench {

// Work per benchmark iteration.
inline constexpr int kBatch = 1000;           // call_soon_batch: callbacks queued, then run
inline constexpr int kChain = 1000;           // call_soon_chain: each callback queues the next
inline constexpr int kTimers = 1'000'000;     // timers_arm, timers_fire: libuv's million timers
inline constexpr int kTimerSpreadMs = 50;     // deadlines spread over [1, 50] ms
inline constexpr int kChurn = 100'000;        // timers_churn: arm + cancel
inline constexpr int kFlood = 100'000;        // xthread_flood: calls per iteration, all senders
inline constexpr int kFdHops = 10'000;        // fd_chain: readiness hops along the chain
inline constexpr int kTasks = 10'000;         // coro_spawn: tasks spawned and finished
inline constexpr int kAwaits = 100'000;       // coro_await_ready, coro_sleep0
inline constexpr int kSubmitters = 8;         // runner_threaded_8_submitters: threads at once
inline constexpr int kSubmitterCalls = 200;   // ... calls per thread per iteration
inline constexpr int kIdleFds = 10'000;       // fd_turn_idle10000: watched fds that never fire
inline constexpr int kWatchMemoryFds = 1000;  // watch_memory: fds watched at once

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

// Bytes the program holds on the heap (glibc), for bytes-per-timer and bytes-per-task: the
// arena's blocks plus the large ones glibc maps separately (a million timers' arrays are such
// blocks), less the blocks weft's recycler keeps free on this thread for reuse
// (core/detail/recycler.h). Those are in use to malloc but held by nobody, and a row that ran
// after another took its tasks' frames from them without a malloc: counted as heap, a task's
// frame and state vanished from bytes-per-task after the first repetition.
inline std::size_t heap_in_use() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd - weft::detail::recycled_cached_bytes();
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

// Per-operation latencies of one benchmark run, reported as counters p50_us and p99_us (the
// median of the repetitions is what docs/benchmarks.md shows).
class Latencies {
 public:
  void reserve(std::size_t n) { samples_.reserve(n); }
  void add(std::chrono::steady_clock::duration d) {
    samples_.push_back(std::chrono::duration<double, std::micro>(d).count());
  }
  void merge(const Latencies& other) {
    samples_.insert(samples_.end(), other.samples_.begin(), other.samples_.end());
  }
  double percentile(double p) {
    if (samples_.empty()) return 0;
    const std::size_t at =
        std::min(samples_.size() - 1, static_cast<std::size_t>(p / 100 * samples_.size()));
    std::nth_element(samples_.begin(), samples_.begin() + static_cast<std::ptrdiff_t>(at),
                     samples_.end());
    return samples_[at];
  }
  void report(benchmark::State& state) {
    state.counters["p50_us"] = percentile(50);
    state.counters["p99_us"] = percentile(99);
  }

 private:
  std::vector<double> samples_;
};

// Cross-thread round trips: `call(fn)` hands fn to the loop thread; this thread waits (futex,
// not spinning: on one CPU the loop could not run) until fn has run. Same driver for weft and
// every raw library. Each round trip is timed (p50/p99 counters).
template <typename Call>
void round_trips(benchmark::State& state, int caller_cpu, Call&& call) {
  if (caller_cpu >= 0) pin_to_cpu(caller_cpu);
  std::atomic<std::uint32_t> done{0};
  std::uint32_t expected = 0;
  Latencies latencies;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    call([&done] {
      done.fetch_add(1, std::memory_order_release);
      done.notify_one();
    });
    ++expected;
    for (std::uint32_t seen = done.load(std::memory_order_acquire); seen != expected;
         seen = done.load(std::memory_order_acquire)) {
      done.wait(seen);
    }
    latencies.add(std::chrono::steady_clock::now() - start);
  }
  unpin();
  check(state, done.load(), state.iterations());
  state.SetItemsProcessed(state.iterations());
  latencies.report(state);
}

// What a runner's caller does to wait for one result, written the way weft's EventualResult
// does it: a state with a mutex, a condition variable and a done flag; the loop thread sets the
// flag under the lock and notifies after releasing it; the caller sleeps on the condition
// variable. The floor of the threaded and host runners is this wait around one cross-thread
// call of the library.
class Completion {
 public:
  void set() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return done_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

// `calls_per_thread` runner-style round trips from each of `submitters` threads at once; every
// call is timed. `call(fn)` hands fn to the loop thread. One iteration is the whole batch.
template <typename Call>
void submitter_round_trips(benchmark::State& state, int submitters, int calls_per_thread,
                           Call&& call) {
  Latencies all;
  std::int64_t done_calls = 0;
  for (auto _ : state) {
    std::vector<Latencies> per_thread(submitters);
    std::vector<std::thread> threads;
    std::atomic<std::int64_t> finished{0};
    for (int t = 0; t < submitters; ++t) {
      threads.emplace_back([&, t] {
        per_thread[t].reserve(calls_per_thread);
        for (int i = 0; i < calls_per_thread; ++i) {
          const auto start = std::chrono::steady_clock::now();
          auto completion = std::make_shared<Completion>();
          call([completion, &finished] {
            finished.fetch_add(1, std::memory_order_relaxed);
            completion->set();
          });
          completion->wait();
          per_thread[t].add(std::chrono::steady_clock::now() - start);
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    for (Latencies& l : per_thread) all.merge(l);
    done_calls += finished.load();
  }
  check(state, done_calls, state.iterations() * submitters * calls_per_thread);
  state.SetItemsProcessed(state.iterations() * submitters * calls_per_thread);
  all.report(state);
}

// Threads that keep every CPU busy while a benchmark runs (a new user's "busy machine"): one per
// CPU, either a pure-CPU loop (kCpu: no system calls, so it is only ever preempted by the
// scheduler) or a loop of write() calls to /dev/null (kSyscalls: `yes > /dev/null`).
class BusyNeighbours {
 public:
  enum class Kind { kNone, kCpu, kSyscalls };
  explicit BusyNeighbours(Kind kind) {
    if (kind == Kind::kNone) return;
    const unsigned n = std::thread::hardware_concurrency();
    for (unsigned i = 0; i < n; ++i) {
      threads_.emplace_back([this, kind] {
        if (kind == Kind::kCpu) {
          std::uint64_t x = 0;
          while (!stop_.load(std::memory_order_relaxed)) {
            for (int j = 0; j < 1000; ++j) x = x * 6364136223846793005ULL + 1;
            benchmark::DoNotOptimize(x);
          }
        } else {
          const int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
          static const char kLine[] = "y\n";
          while (!stop_.load(std::memory_order_relaxed)) {
            [[maybe_unused]] ssize_t w = write(fd, kLine, 2);
          }
          close(fd);
        }
      });
    }
  }
  ~BusyNeighbours() {
    stop_.store(true);
    for (std::thread& thread : threads_) thread.join();
  }
  BusyNeighbours(const BusyNeighbours&) = delete;
  BusyNeighbours& operator=(const BusyNeighbours&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// Runner-style round trips (Completion waits) from this thread, timed one by one, with
// `neighbours` busy beside them. The floor of runner_threaded and runner_threaded_busy_*.
template <typename Call>
void runner_round_trips(benchmark::State& state, BusyNeighbours::Kind neighbours, Call&& call) {
  BusyNeighbours busy(neighbours);
  Latencies latencies;
  std::int64_t done = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    auto completion = std::make_shared<Completion>();
    call([completion, &done] {
      ++done;
      completion->set();
    });
    completion->wait();
    latencies.add(std::chrono::steady_clock::now() - start);
  }
  check(state, done, state.iterations());
  state.SetItemsProcessed(state.iterations());
  latencies.report(state);
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

template <typename LoopThread>
void runner_floor_over(benchmark::State& state, BusyNeighbours::Kind neighbours) {
  LoopThread loop(-1);
  runner_round_trips(state, neighbours, [&](auto fn) { loop.call(std::move(fn)); });
}
template <typename LoopThread>
void submitters_over(benchmark::State& state, int submitters) {
  LoopThread loop(-1);
  submitter_round_trips(state, submitters, kSubmitterCalls,
                        [&](auto fn) { loop.call(std::move(fn)); });
}

// Descriptors open in this process (for descriptors per watched fd).
inline int open_descriptors() {
  int n = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (readdir(dir) != nullptr) ++n;
    closedir(dir);
  }
  return n;
}

// Descriptors that are watched and never become readable (fd_turn_idle*, watch_memory): n
// duplicates of one end of a socketpair nobody writes to (one descriptor each, so that weft,
// which watches a duplicate of every fd, fits in a 20,000-descriptor limit with 9,900 of them).
class IdleFds {
 public:
  explicit IdleFds(int n) {
    if (n == 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair_) != 0) {
      return;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = fcntl(pair_[0], F_DUPFD_CLOEXEC, 3);
      if (fd < 0) return;
      fds_.push_back(fd);
    }
  }
  ~IdleFds() {
    for (int fd : fds_) close(fd);
    if (pair_[0] >= 0) close(pair_[0]);
    if (pair_[1] >= 0) close(pair_[1]);
  }
  IdleFds(const IdleFds&) = delete;
  IdleFds& operator=(const IdleFds&) = delete;
  bool ok(int n) const { return static_cast<int>(fds_.size()) == n; }
  int read_end(int i) const { return fds_[i]; }

 private:
  int pair_[2] = {-1, -1};
  std::vector<int> fds_;
};

// How many idle fds fd_turn_idle_many watches: 10,000, or as many as the descriptor limit
// leaves room for when weft watches a duplicate of each (two descriptors per watched fd).
inline int idle_fd_count() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1000;
  const auto room = static_cast<long long>(limit.rlim_cur) - 200;
  return static_cast<int>(std::min<long long>(kIdleFds, room / 2));
}

// A raw library's baselines, one function per shape of work. register_raw() adds them as the
// "raw" side of <operation>/<library> (bench/pair.h); weft's side registers the pair. Null
// members are skipped. Other idioms of the same library are added with add_raw() directly.
struct RawSuite {
  void (*batch)(benchmark::State&, int n);              // n callbacks queued, then run
  void (*chain)(benchmark::State&, int n);              // n links, each queuing the next
  void (*loop_turn)(benchmark::State&);                 // one idle iteration
  void (*timers)(benchmark::State&, bool time_arming);  // a million timers
  void (*timers_churn)(benchmark::State&);  // arm + cancel one timer object, inside a callback
  void (*xthread_rtt)(benchmark::State&, int loop_cpu, int caller_cpu);
  void (*xthread_flood)(benchmark::State&, int senders);
  void (*fd_chain)(benchmark::State&, int n);
  void (*one_turn)(benchmark::State&);        // one callback, one iteration
  void (*one_turn_fresh)(benchmark::State&);  // the same on a fresh loop
  void (*one_task)(benchmark::State&);        // one turn whose callback resumes a RawTask
  void (*runner_floor)(benchmark::State&, BusyNeighbours::Kind neighbours);
  void (*submitters)(benchmark::State&, int submitters);
  void (*create_destroy)(benchmark::State&);          // a loop as weft's backend makes one
  void (*watch_memory)(benchmark::State&);            // bytes and descriptors per watched fd
  void (*fd_turn_idle)(benchmark::State&, int idle);  // one active fd beside `idle` idle ones
  void (*watch_churn)(benchmark::State&);             // watch an fd, one turn, unwatch
  // The same with a fresh native registration per watch, as weft's Watch makes one.
  void (*watch_churn_fresh)(benchmark::State&);
};

// The operations of weft_benchmarks.cc, each with the raw function that does the same work.
inline bool register_raw(const std::string& library, RawSuite raw) {
  auto add = [&](const std::string& op, BenchFn fn) { add_raw(op, library, "raw", std::move(fn)); };
  if (raw.batch) {
    add("call_soon_batch", [raw](benchmark::State& s) { raw.batch(s, kBatch); });
    // A task replaces a posted callback (the nearest raw analogue, not the same work).
    add("coro_spawn", [raw](benchmark::State& s) { raw.batch(s, kTasks); });
  }
  if (raw.chain) {
    add("call_soon_chain", [raw](benchmark::State& s) { raw.chain(s, kChain); });
    add("coro_sleep0", [raw](benchmark::State& s) { raw.chain(s, kAwaits); });
  }
  if (raw.loop_turn) add("loop_turn", raw.loop_turn);
  if (raw.timers) {
    add("timers_arm", [raw](benchmark::State& s) { raw.timers(s, true); });
    add("timers_fire", [raw](benchmark::State& s) { raw.timers(s, false); });
  }
  if (raw.timers_churn) {
    add("timers_churn", raw.timers_churn);
    add("timer_rearm", raw.timers_churn);  // the raw side re-arms one timer object either way
  }
  if (raw.xthread_rtt) {
    add("xthread_rtt_same_cpu", [raw](benchmark::State& s) { raw.xthread_rtt(s, 0, 0); });
    add("xthread_rtt_cross_cpu", [raw](benchmark::State& s) { raw.xthread_rtt(s, 0, 1); });
  }
  if (raw.xthread_flood) {
    for (int senders : {1, 2, 4}) {
      add("xthread_flood_" + std::to_string(senders),
          [raw, senders](benchmark::State& s) { raw.xthread_flood(s, senders); });
    }
  }
  if (raw.fd_chain) {
    for (int n : {100, 1000}) {
      add("fd_chain_" + std::to_string(n), [raw, n](benchmark::State& s) { raw.fd_chain(s, n); });
    }
  }
  if (raw.one_turn) add("runner_blocking", raw.one_turn);
  if (raw.one_turn_fresh) add("runner_blocking_fresh", raw.one_turn_fresh);
  // The turn plus a task resume, the baseline of the blocking runner's target.
  if (raw.one_task) add_raw("runner_blocking", library, "raw_task", raw.one_task);
  if (raw.runner_floor) {
    using Kind = BusyNeighbours::Kind;
    add("runner_threaded", [raw](benchmark::State& s) { raw.runner_floor(s, Kind::kNone); });
    add("runner_host", [raw](benchmark::State& s) { raw.runner_floor(s, Kind::kNone); });
    add("runner_threaded_busy_cpu",
        [raw](benchmark::State& s) { raw.runner_floor(s, Kind::kCpu); });
    add("runner_threaded_busy_syscalls",
        [raw](benchmark::State& s) { raw.runner_floor(s, Kind::kSyscalls); });
  }
  if (raw.submitters) {
    add("runner_threaded_8_submitters",
        [raw](benchmark::State& s) { raw.submitters(s, kSubmitters); });
  }
  if (raw.create_destroy) add("reactor_create_destroy", raw.create_destroy);
  if (raw.watch_memory) add("watch_memory", raw.watch_memory);
  if (raw.fd_turn_idle) {
    add("fd_turn_idle0", [raw](benchmark::State& s) { raw.fd_turn_idle(s, 0); });
    add("fd_turn_idle_many", [raw](benchmark::State& s) { raw.fd_turn_idle(s, idle_fd_count()); });
  }
  if (raw.watch_churn) {
    add("watch_churn", raw.watch_churn);
    // One handle whose interest changes: what weft's IoHandle does.
    add("io_handle_churn", raw.watch_churn);
  }
  if (raw.watch_churn_fresh) add_raw("watch_churn", library, "raw_fresh", raw.watch_churn_fresh);
  return true;
}

}  // namespace weft::bench

#endif  // WEFT_BENCH_BENCH_SUPPORT_H_
