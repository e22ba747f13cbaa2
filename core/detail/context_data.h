// ContextData: the immutable set of context-variable bindings behind weft::Context
// (core/context.h), and the thread-local pointer every read goes through.
//
// A context is a small immutable array of (variable, value) pairs shared by reference count:
// setting a variable makes a new array (copy-on-write, like Python's HAMT-based contextvars,
// but flat, because real programs bind a handful of variables); capturing a context (spawn,
// call_soon, a runner call) only takes a reference. Reading is a thread-local load plus a
// linear scan of that handful: no allocation, no lock, no atomic.
//
// Which context is current on a thread is `t_context` (null: the root context, with nothing
// bound), and the slot that owns it is `t_context_owner` (the running task's, a captured
// callback's, or the thread's own). ContextSwitch installs a slot around a resumption or a
// callback; ~ContextSwitch restores the previous one.
//
// Threading: a ContextData is immutable once published and its reference count is atomic,
// so a context may be captured on one thread and installed on another (Runner::run). The
// thread-locals are per thread by definition: threads inherit nothing.
#ifndef WEFT_CORE_DETAIL_CONTEXT_DATA_H_
#define WEFT_CORE_DETAIL_CONTEXT_DATA_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "weft/core/detail/fast_tls.h"

namespace weft::detail {

class ContextData {
 public:
  struct Binding {
    const void* key;
    std::shared_ptr<const void> value;
  };

  // The value bound to `key`, or null.
  const void* find(const void* key) const noexcept {
    for (const Binding& binding : bindings_) {
      if (binding.key == key) return binding.value.get();
    }
    return nullptr;
  }
  const std::vector<Binding>& bindings() const { return bindings_; }

 private:
  friend class ContextRef;
  std::vector<Binding> bindings_;
  mutable std::atomic<std::size_t> refs_{0};
};

// A counted reference to a ContextData; null is the root context.
class ContextRef {
 public:
  ContextRef() = default;
  explicit ContextRef(const ContextData* data) : data_(data) { retain(); }
  ContextRef(const ContextRef& other) : data_(other.data_) { retain(); }
  ContextRef(ContextRef&& other) noexcept : data_(std::exchange(other.data_, nullptr)) {}
  ContextRef& operator=(ContextRef other) noexcept {
    std::swap(data_, other.data_);
    return *this;
  }
  ~ContextRef() { release(); }

  const ContextData* get() const { return data_; }
  explicit operator bool() const { return data_ != nullptr; }

  // `base` with `key` bound to `value` (null `value`: unbound).
  static ContextRef with(const ContextData* base, const void* key,
                         std::shared_ptr<const void> value);

 private:
  void retain() const {
    if (data_ != nullptr) data_->refs_.fetch_add(1, std::memory_order_relaxed);
  }
  void release() const {
    if (data_ != nullptr && data_->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      delete data_;
    }
  }
  const ContextData* data_ = nullptr;
};

// The current context of this thread and the slot that owns it (see above). Inline
// variables, constant-initialized: reading them needs no TLS wrapper call; initial-exec
// (core/detail/fast_tls.h): every task resumption switches them.
WEFT_FAST_TLS inline constinit thread_local const ContextData* t_context = nullptr;
WEFT_FAST_TLS inline constinit thread_local ContextRef* t_context_owner = nullptr;

// Installs `slot` as the current context for its lifetime.
class ContextSwitch {
 public:
  explicit ContextSwitch(ContextRef& slot) noexcept
      : previous_(t_context), previous_owner_(t_context_owner) {
    t_context_owner = &slot;
    t_context = slot.get();
  }
  ~ContextSwitch() {
    t_context = previous_;
    t_context_owner = previous_owner_;
  }
  ContextSwitch(const ContextSwitch&) = delete;
  ContextSwitch& operator=(const ContextSwitch&) = delete;

 private:
  const ContextData* previous_;
  ContextRef* previous_owner_;
};

// Makes the root context current for its lifetime, for weft's own scheduling of task
// resumptions: those install the task's context themselves, so capturing the current one
// (and allocating a wrapper for it) would be waste.
class NoContext {
 public:
  NoContext() noexcept : previous_(t_context) { t_context = nullptr; }
  ~NoContext() { t_context = previous_; }
  NoContext(const NoContext&) = delete;
  NoContext& operator=(const NoContext&) = delete;

 private:
  const ContextData* previous_;
};

// A reference to the current context, for capturing it.
inline ContextRef current_context() { return ContextRef(t_context); }

// Binds `key` in the current context (the owning slot gets the new data).
void set_in_current_context(const void* key, std::shared_ptr<const void> value);

// After a callback that ran in the root context: forgets anything it bound, so the next
// root-context callback starts clean. One load and a branch when nothing was bound.
void clear_root_context_slow();
inline void clear_root_context() {
  if (t_context != nullptr) [[unlikely]] {
    clear_root_context_slow();
  }
}

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_CONTEXT_DATA_H_
