// The raw Boost.Asio baselines: the same work as bench/weft_benchmarks.cc, written the
// idiomatic Asio way, registered as <operation>/asio/raw.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
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
#include "benchmark/benchmark.h"

namespace weft::bench {
namespace {

namespace asio = boost::asio;

// A context as an application keeps one: concurrency hint 1, kept alive by a work guard, and
// with I/O objects, so its reactor (epoll) exists and is polled as it would be in any program
// that does I/O. (An io_context that never made an I/O object never polls the kernel at all.)
struct Context {
  asio::io_context context{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard{context.get_executor()};
  asio::steady_timer io_object{context};
  void run_until(const Counter& counter, std::int64_t target) {
    while (counter.value < target) context.run_one();
  }
};

void batch(benchmark::State& state, int n) {
  Context ctx;
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
void chain(benchmark::State& state, int n) {
  Context ctx;
  Counter counter;
  for (auto _ : state) {
    Chain c{&ctx.context, n, &counter};
    asio::post(ctx.context, [&c] { c.link(); });
    ctx.run_until(counter, counter.value + n);
  }
  check(state, counter.value, state.iterations() * n);
  state.SetItemsProcessed(state.iterations() * n);
}

void loop_turn(benchmark::State& state) {
  Context ctx;
  for (auto _ : state) ctx.context.poll_one();
  state.SetItemsProcessed(state.iterations());
}

// A million steady_timers (made beforehand), each with one async_wait.
void timers(benchmark::State& state, bool time_arming) {
  Context ctx;
  Counter counter;
  std::vector<std::optional<asio::steady_timer>> handles(kTimers);
  std::vector<std::chrono::milliseconds> delays(kTimers);
  std::mt19937 rng(42);
  for (int i = 0; i < kTimers; ++i) {
    handles[i].emplace(ctx.context);
    delays[i] = std::chrono::milliseconds(1 + rng() % kTimerSpreadMs);
  }
  double bytes = 0;
  for (auto _ : state) {
    if (!time_arming) state.PauseTiming();
    const std::size_t heap_before = heap_in_use();
    for (int i = 0; i < kTimers; ++i) {
      handles[i]->expires_after(delays[i]);
      handles[i]->async_wait([&counter](boost::system::error_code) { ++counter.value; });
    }
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

void timers_churn(benchmark::State& state) {
  Context ctx;
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
  Context ctx_;
  std::thread thread_;
};

void xthread_rtt(benchmark::State& state, int loop_cpu, int caller_cpu) {
  LoopThread loop(loop_cpu);
  round_trips(state, caller_cpu, [&](auto fn) { loop.call(std::move(fn)); });
}

void xthread_flood(benchmark::State& state, int senders) {
  LoopThread loop(-1);
  flood(state, senders, [&](auto fn) { loop.call(std::move(fn)); });
}

// A byte travelling along a ring of socketpairs; each descriptor re-arms its wait.
struct Ring {
  std::vector<int> reads, writes;
  std::vector<std::unique_ptr<asio::posix::stream_descriptor>> descriptors;
  std::int64_t hops = 0, target = 0;
  void arm(int i) {
    descriptors[i]->async_wait(
        asio::posix::stream_descriptor::wait_read, [this, i](boost::system::error_code error) {
          if (error) return;
          char byte;
          if (read(reads[i], &byte, 1) == 1 && ++hops < target) {
            [[maybe_unused]] ssize_t w = write(writes[(i + 1) % writes.size()], &byte, 1);
          }
          arm(i);
        });
  }
};
void fd_chain(benchmark::State& state, int n) {
  Context ctx;
  Ring ring;
  for (int i = 0; i < n; ++i) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
      state.SkipWithError("socketpair failed (raise the fd limit)");
      return;
    }
    ring.reads.push_back(pair[0]);
    ring.writes.push_back(pair[1]);
    ring.descriptors.push_back(
        std::make_unique<asio::posix::stream_descriptor>(ctx.context, pair[0]));
  }
  for (int i = 0; i < n; ++i) ring.arm(i);
  for (auto _ : state) {
    ring.target = ring.hops + kFdHops;
    [[maybe_unused]] ssize_t w = write(ring.writes[0], "x", 1);
    while (ring.hops < ring.target) ctx.context.run_one();
  }
  check(state, ring.hops, state.iterations() * kFdHops);
  state.SetItemsProcessed(state.iterations() * kFdHops);
  for (auto& d : ring.descriptors) d->cancel();
  ctx.context.poll();
  ring.descriptors.clear();  // closes the read ends
  for (int fd : ring.writes) close(fd);
}

void one_turn(benchmark::State& state) {
  Context ctx;
  Counter counter;
  for (auto _ : state) {
    asio::post(ctx.context, [&counter] { ++counter.value; });
    ctx.run_until(counter, counter.value + 1);
  }
  check(state, counter.value, state.iterations());
}

void one_turn_fresh(benchmark::State& state) {
  Counter counter;
  for (auto _ : state) {
    Context ctx;
    asio::post(ctx.context, [&counter] { ++counter.value; });
    ctx.run_until(counter, counter.value + 1);
  }
  check(state, counter.value, state.iterations());
}

const bool registered = register_raw("asio", RawSuite{.batch = batch,
                                                      .chain = chain,
                                                      .loop_turn = loop_turn,
                                                      .timers = timers,
                                                      .timers_churn = timers_churn,
                                                      .xthread_rtt = xthread_rtt,
                                                      .xthread_flood = xthread_flood,
                                                      .fd_chain = fd_chain,
                                                      .one_turn = one_turn,
                                                      .one_turn_fresh = one_turn_fresh});

}  // namespace
}  // namespace weft::bench
