// A per-thread cache of freed memory blocks for coroutine frames and Deferred states, the
// few allocations every spawned task makes (its Task's frame, and the block holding its
// Deferred's state and its context). Asio recycles handler memory per thread the same way.
//
// Why: a task is allocated and freed on one loop thread, over and over, in a handful of sizes.
// glibc serves that from its per-thread cache only up to 7 blocks per size; past that (a
// burst of thousands of tasks, a server's connections) every frame goes through the arena's
// bins, and `perf` showed malloc/free at half of a spawn's cost. Here a freed block goes to a
// free list for its size class (16-byte steps up to kMaxRecycledSize) and the next allocation
// of that class on the same thread takes it back: a pointer pop, no lock, and memory that is
// still in cache.
//
// Bounds: at most kMaxCachedBytes per thread, about 24,000 spawned tasks' blocks (a trivial
// task takes about 340 bytes in two blocks). The memory is not lost to the program: glibc would
// keep it in the thread's arena after free() as well; the cache decides only which sizes it is
// kept as.
// When it is full, a freed block takes the place of blocks of a class that holds more bytes
// (so sizes a thread stopped using give way to the ones it uses now), or goes to operator
// delete if its own class holds the most. Blocks larger than kMaxRecycledSize are not cached. A
// block may be freed on another thread than the one that made it (a Task built on a caller's
// thread, run on the loop's): it joins the freeing thread's cache. A thread's cache is freed
// when the thread exits; a block freed after that (by a later thread_local's destructor) goes
// straight to operator delete.
//
// Under AddressSanitizer the cache is off (every block goes to operator new/delete), so ASan's
// quarantine still catches a use of a freed frame.
//
// Threading: thread-safe; each thread has its own cache, nothing is shared.
#ifndef WEFT_CORE_DETAIL_RECYCLER_H_
#define WEFT_CORE_DETAIL_RECYCLER_H_

#include <array>
#include <cstddef>
#include <new>

#include "weft/core/detail/fast_tls.h"

namespace weft::detail {

// False under AddressSanitizer (see above): every block then goes to operator new/delete.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kRecycling = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kRecycling = false;
#else
inline constexpr bool kRecycling = true;
#endif
#else
inline constexpr bool kRecycling = true;
#endif

inline constexpr std::size_t kMaxRecycledSize = 1024;
inline constexpr std::size_t kMaxCachedBytes = std::size_t{8} << 20;

// The per-thread cache, here so that the common allocation and deallocation are inline (a
// pointer pop or push; as calls into weft_core they were a sixth of a spawn). Class c holds
// blocks of (c + 1) * kStep bytes; size 0 shares class 0. Trivially destructible, so that it
// may be used at any point of the thread's exit; `exited` is set once it has been emptied
// there (recycler.cc).
struct RecyclerCache {
  static constexpr std::size_t kStep = 16;
  static constexpr std::size_t kClasses = kMaxRecycledSize / kStep;
  static constexpr std::size_t class_of(std::size_t size) {
    return size == 0 ? 0 : (size - 1) / kStep;
  }
  static constexpr std::size_t class_size(std::size_t c) { return (c + 1) * kStep; }

  struct FreeBlock {
    FreeBlock* next;
  };

  std::array<FreeBlock*, kClasses> heads{};
  std::array<std::size_t, kClasses> class_bytes{};
  std::size_t bytes = 0;
  // A class that held the most bytes when the cache was last full (a hint, kept by the slow
  // path only: the push below is on every free, so it keeps no more than the counts).
  std::size_t fullest = 0;
  bool exited = false;

  void push(std::size_t c, void* block) noexcept {
    heads[c] = new (block) FreeBlock{heads[c]};
    class_bytes[c] += class_size(c);
    bytes += class_size(c);
  }
  FreeBlock* pop(std::size_t c) noexcept {
    FreeBlock* block = heads[c];
    if (block != nullptr) {
      heads[c] = block->next;
      class_bytes[c] -= class_size(c);
      bytes -= class_size(c);
    }
    return block;
  }
};

// This thread's cache while it is in use (from its first recycled block to the thread's exit),
// null otherwise. Initial-exec (core/detail/fast_tls.h): read by every allocation.
WEFT_FAST_TLS inline constinit thread_local RecyclerCache* t_recycler = nullptr;

// The slow paths (recycler.cc): a class with no free block, a full cache, a thread whose cache
// is not in use yet or any more, a block too large to cache.
void* recycled_allocate_slow(std::size_t size);
void recycled_deallocate_slow(void* block, std::size_t size) noexcept;

// A block of at least `size` bytes, aligned for any object up to
// __STDCPP_DEFAULT_NEW_ALIGNMENT__. Throws std::bad_alloc. Always inline, as is the
// deallocation: `size` is a constant at most callers (a frame's, a state's), and so is then
// its class; GCC otherwise left the deallocation out of line in a frame's destroy.
[[gnu::always_inline]] inline void* recycled_allocate(std::size_t size) {
  if constexpr (kRecycling) {
    RecyclerCache* cache = t_recycler;
    if (cache != nullptr && size <= kMaxRecycledSize) {
      if (void* block = cache->pop(RecyclerCache::class_of(size))) return block;
    }
  }
  return recycled_allocate_slow(size);
}

// Returns a block from recycled_allocate(size) (the same size).
[[gnu::always_inline]] inline void recycled_deallocate(void* block, std::size_t size) noexcept {
  if constexpr (kRecycling) {
    RecyclerCache* cache = t_recycler;
    if (cache != nullptr && size <= kMaxRecycledSize) {
      const std::size_t c = RecyclerCache::class_of(size);
      if (cache->bytes + RecyclerCache::class_size(c) <= kMaxCachedBytes) {
        cache->push(c, block);
        return;
      }
    }
  }
  recycled_deallocate_slow(block, size);
}

// How many bytes this thread's cache holds (for tests).
std::size_t recycled_cached_bytes() noexcept;

// Mixed into a coroutine's promise type: its frames come from the cache.
struct RecycledFrame {
  static void* operator new(std::size_t size) { return recycled_allocate(size); }
  static void operator delete(void* frame, std::size_t size) noexcept {
    recycled_deallocate(frame, size);
  }
};

// An allocator for std::allocate_shared (a runner's shared result state and its control block
// in one recycled block; a Deferred's state is made by make_counted, core/detail/counted_ref.h).
template <typename T>
struct RecyclingAllocator {
  using value_type = T;
  RecyclingAllocator() = default;
  template <typename U>
  RecyclingAllocator(const RecyclingAllocator<U>&) noexcept {}  // NOLINT: rebinding is implicit
  T* allocate(std::size_t n) {
    static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__, "over-aligned state");
    return static_cast<T*>(recycled_allocate(n * sizeof(T)));
  }
  void deallocate(T* block, std::size_t n) noexcept { recycled_deallocate(block, n * sizeof(T)); }
  template <typename U>
  bool operator==(const RecyclingAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace weft::detail

#endif  // WEFT_CORE_DETAIL_RECYCLER_H_
