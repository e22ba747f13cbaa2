// Context variables: values that follow the work (Python's contextvars, folly's
// RequestContext): a value set in a task is seen by everything the task starts.
//
//   weft::ContextVar<std::string> cell("cell");
//   auto token = cell.set("cell 1");
//   weft::spawn(reactor, ticker());              // the ticker sees "cell 1" ...
//   reactor.call_later(1s, [] { log(*cell.get()); });  // ... and so does this callback
//
// What captures the current context, and when:
// * spawn() and TaskGroup::start_soon()/start(): at the call; the new task gets its own
//   copy (its later set()s are its own, and never reach the starter).
// * A Task awaited with co_await runs in the awaiting task: it shares the task's context.
// * Reactor::call_soon, call_later/call_at, call_from_thread, watch_readable/writable and
//   watch_signal: when scheduled; the callback runs in that context, every time it runs.
// * Runner::run() and submit(): the calling thread's context is carried into the task
//   (they schedule through call_from_thread or spawn).
// * A new thread starts in the root context (nothing bound): threads inherit nothing.
// Work that must not be pinned to whoever started it (a long-lived service started from a
// notebook cell, ipykernel's escape hatch) starts in a clean context:
//   weft::Context::root().run([&] { weft::spawn(reactor, serve()); });
//
// Cost: get() is a thread-local load and a scan of the handful of bindings (no allocation,
// no lock, no atomic). set() allocates a new binding array (copy-on-write); capturing a
// non-root context costs a reference count, and a callback scheduled in one a small
// wrapper; in the root context scheduling costs nothing extra.
//
// Threading: a ContextVar is usually a global; get()/set() act on the calling thread's
// current context. Values are shared, immutable, between every context that captured
// them (possibly on other threads): treat them as const.
#ifndef WEFT_CORE_CONTEXT_H_
#define WEFT_CORE_CONTEXT_H_

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "weft/core/detail/context_data.h"

namespace weft {

// A snapshot of a set of bindings.
class Context {
 public:
  // The calling thread's (or running task's) current context.
  static Context current() { return Context(detail::current_context()); }
  // The empty context.
  static Context root() { return Context(detail::ContextRef()); }

  // Runs `fn()` with this context current; returns what it returns. set()s inside `fn` act
  // on a copy, dropped when `fn` returns (the snapshot is immutable). Work `fn` starts
  // captures this context.
  template <typename Fn>
  decltype(auto) run(Fn&& fn) const {
    detail::ContextRef slot = data_;
    detail::ContextSwitch use(slot);
    return std::forward<Fn>(fn)();
  }

  // How many variables are bound.
  std::size_t size() const { return data_ ? data_.get()->bindings().size() : 0; }

 private:
  explicit Context(detail::ContextRef data) : data_(std::move(data)) {}
  detail::ContextRef data_;
};

template <typename T>
class ContextVar {
 public:
  // What set() returns, for reset(): the binding it replaced.
  class Token {
   private:
    friend class ContextVar;
    explicit Token(std::shared_ptr<const void> previous) : previous_(std::move(previous)) {}
    std::shared_ptr<const void> previous_;
  };

  explicit ContextVar(std::string name) : name_(std::move(name)) {}
  ContextVar(const ContextVar&) = delete;
  ContextVar& operator=(const ContextVar&) = delete;

  const std::string& name() const { return name_; }

  // The value in the current context, or null if unbound there. The pointer stays valid
  // while the current context keeps the binding (until the next set() or the end of the
  // task or callback).
  const T* get() const noexcept {
    const detail::ContextData* data = detail::t_context;
    return data != nullptr ? static_cast<const T*>(data->find(this)) : nullptr;
  }
  T value_or(T fallback) const {
    const T* value = get();
    return value != nullptr ? *value : std::move(fallback);
  }

  // Binds the variable in the current context (the running task's, callback's or thread's).
  Token set(T value) {
    const detail::ContextData* data = detail::t_context;
    std::shared_ptr<const void> previous;
    if (data != nullptr) {
      for (const auto& binding : data->bindings()) {
        if (binding.key == this) previous = binding.value;
      }
    }
    detail::set_in_current_context(this, std::make_shared<const T>(std::move(value)));
    return Token(std::move(previous));
  }
  // Restores the binding set() replaced (unbound if there was none).
  void reset(Token token) { detail::set_in_current_context(this, std::move(token.previous_)); }

 private:
  std::string name_;
};

}  // namespace weft

#endif  // WEFT_CORE_CONTEXT_H_
