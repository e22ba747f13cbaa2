// DrivenRun: Runner::run() on a runner whose caller drives the loop (the blocking runner).
//
// An EventualResult is shared: other threads may wait on it or cancel it, and it may outlive
// its runner, so its state is reference counted, locked, and reached through a ReactorLink.
// A run() on a driven runner shares nothing: the task is seen by run() alone, and run()'s thread
// is the loop's for the whole call. So its task's context and outcome are one block with no
// lock, no reference count and no link, and run() cancels the task itself, on its own thread,
// outside any turn.
//
// The block belongs to run() until the task ends. If run() leaves first (a second stop() during
// the cleanup after a timeout or a stop, or an exception out of a loop turn), the block passes
// to the task, which frees it when it ends, or when its reactor is destroyed with it
// unfinished; an error it then ends with, unless run() had cancelled it, goes to the reactor's
// error handler (as a dropped EventualResult's does).
//
// Threading: the thread that drives the loop (run()'s caller), or the thread that later runs
// the loop, which the runner's threading rule makes one thread at a time.
#ifndef WEFT_RUNNERS_DETAIL_DRIVEN_RUN_H_
#define WEFT_RUNNERS_DETAIL_DRIVEN_RUN_H_

#include <atomic>
#include <coroutine>
#include <exception>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

#include "weft/core/detail/recycler.h"
#include "weft/core/detail/task_context.h"
#include "weft/core/reactor.h"
#include "weft/core/task.h"

namespace weft::detail {

// What every DrivenRun's block has, whatever T (driven_run.cc).
class DrivenTask : protected TaskContext {
 public:
  DrivenTask(const DrivenTask&) = delete;
  DrivenTask& operator=(const DrivenTask&) = delete;

  // True once the task has ended (its outcome recorded, its frame freed). An atomic only to
  // fit EventualDriver::drive(); one thread reads and writes it.
  const std::atomic<bool>& done() const { return done_; }
  // Cancels the task (before it starts: its body never runs). On the loop's thread, outside a
  // turn. Idempotent.
  void cancel();
  // run() is leaving: the block is the task's from now on, or is freed at once if it has ended.
  void release() noexcept;

 protected:
  using Free = void (*)(DrivenTask*) noexcept;
  DrivenTask(std::coroutine_handle<> frame, const SpawnedRoot* root, Free free) noexcept;
  ~DrivenTask() = default;

  // Puts the task on `reactor`, to start in its next turn with the context variables current
  // here.
  void start_on(Reactor& reactor);
  // The task has ended: records `error` (if any), frees the frame and leaves the reactor; an
  // orphaned block (run() is gone) then reports the error unless run() cancelled it, and frees
  // itself.
  void end(std::exception_ptr error, bool started) noexcept;
  // SpawnedRoot::destroy: the reactor is going away with the task unfinished.
  static void destroy_unfinished(TaskContext& context) noexcept;

  std::exception_ptr error_;

 private:
  static void begin(void* self, void*);
  void leave() noexcept;

  const Free free_;
  std::atomic<bool> done_ = false;
  bool orphaned_ = false;
  bool cancelled_by_run_ = false;
};

template <typename T>
class DrivenRun {
 public:
  // Makes the block and puts the task on `reactor` (it starts in the next turn). `task` must be
  // valid.
  DrivenRun(Reactor& reactor, Task<T> task) : block_(Block::make(std::move(task))) {
    block_->start(reactor);
  }
  DrivenRun(const DrivenRun&) = delete;
  DrivenRun& operator=(const DrivenRun&) = delete;
  ~DrivenRun() { block_->release(); }

  const std::atomic<bool>& done() const { return block_->done(); }
  bool ready() const { return block_->done().load(std::memory_order_relaxed); }
  void cancel() { block_->cancel(); }
  // Requires ready(): the value, or rethrows the task's error.
  T result() { return block_->result(); }

 private:
  class Block final : public DrivenTask {
   public:
    static Block* make(Task<T> task) {
      void* memory = recycled_allocate(sizeof(Block));
      return new (memory) Block(std::move(task).release_for_detail());
    }
    void start(Reactor& reactor) { start_on(reactor); }
    T result() {
      if (error_ != nullptr) std::rethrow_exception(error_);
      if constexpr (!std::is_void_v<T>) return std::move(*value_);
    }

   private:
    explicit Block(std::coroutine_handle<TaskPromise<T>> frame) noexcept
        : DrivenTask(frame, &kRoot, &Block::free) {
      frame.promise().adopt_as_root(*this);
    }

    static void free(DrivenTask* task) noexcept {
      auto* self = static_cast<Block*>(task);
      self->~Block();
      recycled_deallocate(self, sizeof(Block));
    }

    // The frame has returned or thrown: the outcome goes into the block.
    static std::coroutine_handle<> finished(TaskContext& context) noexcept {
      auto& self = static_cast<Block&>(context);
      TaskPromise<T>& promise =
          std::coroutine_handle<TaskPromise<T>>::from_address(self.root.address()).promise();
      std::exception_ptr error = std::move(promise.error());
      if constexpr (!std::is_void_v<T>) {
        if (error == nullptr) {
          try {
            self.value_.emplace(std::move(*promise.value()));
          } catch (...) {
            error = std::current_exception();  // the value's move threw
          }
        }
      }
      self.end(std::move(error), /*started=*/true);  // may free the block: last
      return std::noop_coroutine();
    }

    static constexpr SpawnedRoot kRoot{&Block::finished, &DrivenTask::destroy_unfinished};

    struct Empty {};
    [[no_unique_address]] std::conditional_t<std::is_void_v<T>, Empty, std::optional<T>> value_;
  };

  Block* const block_;
};

}  // namespace weft::detail

#endif  // WEFT_RUNNERS_DETAIL_DRIVEN_RUN_H_
