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

// Each descriptor re-arms its wait after every readiness.
void arm(asio::posix::stream_descriptor& descriptor, SocketRing& ring, int i) {
  descriptor.async_wait(asio::posix::stream_descriptor::wait_read,
                        [&descriptor, &ring, i](boost::system::error_code error) {
                          if (error) return;
                          ring.hop(i);
                          arm(descriptor, ring, i);
                        });
}
void fd_chain(benchmark::State& state, int n) {
  Context ctx;
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

const bool registered =
    register_raw("asio", RawSuite{.batch = batch,
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
