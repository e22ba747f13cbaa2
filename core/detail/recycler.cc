#include "weft/core/detail/recycler.h"

#include <new>

namespace weft::detail {

namespace {

using Cache = RecyclerCache;

// Makes room for a block of class c by freeing blocks of a class holding more, so that a size
// the thread stopped using gives way to the ones it uses now. False if c is the one that holds
// the most: the caller frees its block instead.
bool make_room(Cache& cache, std::size_t c) {
  while (cache.bytes + Cache::class_size(c) > kMaxCachedBytes) {
    if (cache.class_bytes[cache.fullest] <= cache.class_bytes[c]) {
      // The hint may be stale: the fast paths push and pop without moving it.
      for (std::size_t i = 0; i < Cache::kClasses; ++i) {
        if (cache.class_bytes[i] > cache.class_bytes[cache.fullest]) cache.fullest = i;
      }
      if (cache.class_bytes[cache.fullest] <= cache.class_bytes[c]) return false;
    }
    ::operator delete(cache.pop(cache.fullest));
  }
  return true;
}

constinit thread_local Cache t_cache;

// Frees the cache's blocks at thread exit. Touched on the thread's first recycled block, which
// registers its destructor; thread_local destructors run in reverse order of construction, so
// blocks freed by thread_locals made earlier arrive after this ran and bypass the cache.
struct Releaser {
  bool armed = false;
  ~Releaser() {
    t_recycler = nullptr;
    for (std::size_t c = 0; c < Cache::kClasses; ++c) {
      while (Cache::FreeBlock* block = t_cache.pop(c)) ::operator delete(block);
    }
    t_cache.exited = true;
  }
};
thread_local Releaser t_releaser;

// The thread's first recycled block, or one after its exit.
Cache* activate() noexcept {
  if (t_cache.exited) return nullptr;
  t_releaser.armed = true;  // constructs it, registering its destructor
  t_recycler = &t_cache;
  return &t_cache;
}

}  // namespace

void* recycled_allocate_slow(std::size_t size) {
  if (!kRecycling || size > kMaxRecycledSize) return ::operator new(size);
  // The class's full size, so that the block can serve any size of its class later.
  return ::operator new(Cache::class_size(Cache::class_of(size)));
}

void recycled_deallocate_slow(void* block, std::size_t size) noexcept {
  if constexpr (kRecycling) {
    Cache* cache = t_recycler;
    if (cache == nullptr) cache = activate();
    const std::size_t c = Cache::class_of(size);
    if (size <= kMaxRecycledSize && cache != nullptr && make_room(*cache, c)) {
      cache->push(c, block);
      return;
    }
  }
  ::operator delete(block);
}

std::size_t recycled_cached_bytes() noexcept { return t_cache.bytes; }

}  // namespace weft::detail
