// CountedRef: an intrusive reference-counted pointer (a Deferred's state), cheaper than
// std::shared_ptr where a reference is made or dropped per operation.
//
// Why not std::shared_ptr: a spawned task made three atomic read-modify-writes on its
// Deferred's count (the reactor's reference made, dropped, the caller's dropped) and an await
// two more (its awaiter's copy). Here the count lives in the object (one recycled block, no
// control block), a reference made before anyone else can see the object is a plain store
// (copy_unpublished), and the last reference is dropped without a read-modify-write (a count of
// one means no other thread holds a reference that it could copy; libstdc++'s shared_ptr does
// the same). The count stays atomic: a Deferred's handle may be copied or dropped on another
// thread than its loop's (a runner's run() may return one to its caller).
//
// Threading: copying, moving and dropping references is thread-safe, as for std::shared_ptr;
// the object itself follows its own rule.
#ifndef WEFT_CORE_DETAIL_COUNTED_REF_H_
#define WEFT_CORE_DETAIL_COUNTED_REF_H_

#include <atomic>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

#include "weft/core/detail/recycler.h"

namespace weft::detail {

template <typename T>
class CountedRef;
template <typename T, typename... Args>
CountedRef<T> make_counted(Args&&... args);

// The base of an object that CountedRef points to: its count and how it is freed.
class Counted {
 protected:
  Counted() noexcept = default;
  ~Counted() = default;

 private:
  template <typename>
  friend class CountedRef;
  template <typename T, typename... Args>
  friend CountedRef<T> make_counted(Args&&... args);

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void drop_ref() noexcept {
    // Acquire either way: what other threads did before dropping theirs happens before the free.
    if (refs_.load(std::memory_order_acquire) == 1 ||
        refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      free_(this);
    }
  }

  // The count last: the 4 bytes after it end the object, and a derived class's first small
  // members are laid out there (a Deferred's flags), so they cost no room of their own.
  void (*free_)(Counted*) noexcept = nullptr;
  std::atomic<std::uint32_t> refs_ = 1;
};

template <typename T>
class CountedRef {
 public:
  CountedRef() noexcept = default;
  CountedRef(const CountedRef& other) noexcept : object_(other.object_) {
    if (object_ != nullptr) object_->add_ref();
  }
  CountedRef(CountedRef&& other) noexcept : object_(std::exchange(other.object_, nullptr)) {}
  // From a reference to a derived type.
  template <typename U>
  requires std::is_convertible_v<U*, T*> CountedRef(CountedRef<U>&& other)
  noexcept  // NOLINT(google-explicit-constructor): a pointer
      : object_(std::exchange(other.object_, nullptr)) {}
  template <typename U>
  requires std::is_convertible_v<U*, T*> CountedRef(const CountedRef<U>& other)
  noexcept  // NOLINT(google-explicit-constructor)
      : object_(other.object_) {
    if (object_ != nullptr) object_->add_ref();
  }
  CountedRef& operator=(CountedRef other) noexcept {
    std::swap(object_, other.object_);
    return *this;
  }
  ~CountedRef() {
    if (object_ != nullptr) object_->drop_ref();
  }

  // A new reference to `object`, which a live reference (held by the caller) keeps alive.
  static CountedRef to(T* object) noexcept {
    object->add_ref();
    return CountedRef(object);
  }
  // A second reference, made while this is the only one and no other thread can see the
  // object yet (its maker's own reference): a plain store instead of a read-modify-write.
  CountedRef copy_unpublished() const noexcept {
    auto& refs = static_cast<Counted*>(object_)->refs_;
    refs.store(refs.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return CountedRef(object_);
  }

  T* get() const noexcept { return object_; }
  T* operator->() const noexcept { return object_; }
  T& operator*() const noexcept { return *object_; }
  explicit operator bool() const noexcept { return object_ != nullptr; }

 private:
  template <typename>
  friend class CountedRef;
  template <typename U, typename... Args>
  friend CountedRef<U> make_counted(Args&&... args);

  explicit CountedRef(T* adopted) noexcept : object_(adopted) {}

  T* object_ = nullptr;
};

// A T (derived from Counted) made in a recycled block, with one reference.
template <typename T, typename... Args>
CountedRef<T> make_counted(Args&&... args) {
  static_assert(std::is_base_of_v<Counted, T>);
  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__, "over-aligned object");
  void* block = recycled_allocate(sizeof(T));
  T* object;
  try {
    object = ::new (block) T(std::forward<Args>(args)...);
  } catch (...) {
    recycled_deallocate(block, sizeof(T));
    throw;
  }
  static_cast<Counted*>(object)->free_ = [](Counted* counted) noexcept {
    T* self = static_cast<T*>(counted);
    self->~T();
    recycled_deallocate(self, sizeof(T));
  };
  return CountedRef<T>(object);
}

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_COUNTED_REF_H_
