// RawTask: the least a C++20 coroutine task needs to be run to its end from a raw library's
// callback, for the raw side of rows whose weft side runs a task (runner_blocking's "raw_task").
//
// What an expert would write to run a coroutine on libuv or libevent, which have no task type
// of their own: the frame comes from operator new, the task starts suspended, a posted callback
// resumes it, and the caller reads the result and frees the frame. No scheduler, cancellation,
// context variables or error routing: this is the floor under weft's Task and runner, not the
// same work.
//
// Threading: one thread (the loop's).
#ifndef WEFT_BENCH_RAW_TASK_H_
#define WEFT_BENCH_RAW_TASK_H_

#include <coroutine>
#include <cstdint>
#include <exception>
#include <optional>
#include <utility>

#include "bench/bench_support.h"
#include "benchmark/benchmark.h"

namespace weft::bench {

template <typename T>
class RawTask {
 public:
  struct promise_type {
    RawTask get_return_object() {
      return RawTask(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_value(T value) { result.emplace(std::move(value)); }
    void unhandled_exception() { error = std::current_exception(); }

    std::optional<T> result;
    std::exception_ptr error;
  };

  RawTask(RawTask&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  RawTask& operator=(RawTask&&) = delete;
  ~RawTask() {
    if (handle_) handle_.destroy();
  }

  // The argument of a (function, argument) callback that resumes the task: the raw queues'
  // shape.
  void* frame() const { return handle_.address(); }
  static void resume(void* frame) { std::coroutine_handle<>::from_address(frame).resume(); }

  // Requires the task to have run to its end.
  T result() {
    if (handle_.promise().error) std::rethrow_exception(handle_.promise().error);
    return std::move(*handle_.promise().result);
  }

 private:
  explicit RawTask(std::coroutine_handle<promise_type> handle) : handle_(handle) {}
  std::coroutine_handle<promise_type> handle_;
};

// The task the runner rows run: counts its run and returns 1.
inline RawTask<int> raw_one(std::int64_t& runs) {
  ++runs;
  co_return 1;
}

// runner_blocking's raw_task side, for any raw loop: per iteration one RawTask, whose
// resumption `post(frame)` queues on the loop, and `run_until(counter, target)` runs the loop
// until the task has run.
template <typename Post, typename RunUntil>
void one_task_per_turn(benchmark::State& state, Post&& post, RunUntil&& run_until) {
  Counter counter;
  std::int64_t sum = 0;
  for (auto _ : state) {
    RawTask<int> task = raw_one(counter.value);
    post(task.frame());
    run_until(counter, counter.value + 1);
    sum += task.result();
  }
  check(state, sum, state.iterations());
}

}  // namespace weft::bench

#endif  // WEFT_BENCH_RAW_TASK_H_
