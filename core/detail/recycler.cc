#include "weft/core/detail/recycler.h"

#include <array>
#include <new>

#include "weft/core/detail/fast_tls.h"

namespace weft::detail {

namespace {

constexpr std::size_t kStep = 16;
constexpr std::size_t kClasses = kMaxRecycledSize / kStep;

// Class c holds blocks of (c + 1) * kStep bytes; size 0 shares class 0.
constexpr std::size_t class_of(std::size_t size) { return size == 0 ? 0 : (size - 1) / kStep; }
constexpr std::size_t class_size(std::size_t c) { return (c + 1) * kStep; }

struct FreeBlock {
  FreeBlock* next;
};

// Trivially destructible, so it may be used at any point of the thread's exit; `exited` is
// set once Releaser has emptied it.
struct Cache {
  std::array<FreeBlock*, kClasses> heads{};
  std::array<std::size_t, kClasses> class_bytes{};
  std::size_t bytes = 0;
  std::size_t fullest = 0;  // a class holding the most bytes, or close to it (a hint)
  bool exited = false;

  void push(std::size_t c, void* block) {
    heads[c] = new (block) FreeBlock{heads[c]};
    class_bytes[c] += class_size(c);
    bytes += class_size(c);
    if (class_bytes[c] > class_bytes[fullest]) fullest = c;
  }
  FreeBlock* pop(std::size_t c) {
    FreeBlock* block = heads[c];
    if (block != nullptr) {
      heads[c] = block->next;
      class_bytes[c] -= class_size(c);
      bytes -= class_size(c);
    }
    return block;
  }
  // Makes room for a block of class c by freeing blocks of a class holding more, so that a
  // size the thread stopped using gives way to the ones it uses now. False if c is the one
  // that holds the most: the caller frees its block instead.
  bool make_room(std::size_t c) {
    while (bytes + class_size(c) > kMaxCachedBytes) {
      if (class_bytes[fullest] <= class_bytes[c]) {
        find_fullest();  // the hint may be stale: allocations shrink classes without moving it
        if (class_bytes[fullest] <= class_bytes[c]) return false;
      }
      ::operator delete(pop(fullest));
    }
    return true;
  }
  void find_fullest() {
    for (std::size_t i = 0; i < kClasses; ++i) {
      if (class_bytes[i] > class_bytes[fullest]) fullest = i;
    }
  }
};
constinit thread_local Cache t_cache;

// This thread's cache while it is in use (from its first recycled block to the thread's exit),
// null otherwise. Initial-exec (core/detail/fast_tls.h): a __tls_get_addr call here was a
// tenth of a spawn's cost in `perf`.
WEFT_FAST_TLS constinit thread_local Cache* t_active = nullptr;

// Frees the cache's blocks at thread exit. Touched on the thread's first recycled block, which
// registers its destructor; thread_local destructors run in reverse order of construction, so
// blocks freed by thread_locals made earlier arrive after this ran and bypass the cache.
struct Releaser {
  bool armed = false;
  ~Releaser() {
    for (std::size_t c = 0; c < kClasses; ++c) {
      while (FreeBlock* block = t_cache.pop(c)) ::operator delete(block);
    }
    t_cache.exited = true;
    t_active = nullptr;
  }
};
thread_local Releaser t_releaser;

// The deallocation's slow path: the thread's first recycled block, or one after its exit.
Cache* activate() noexcept {
  if (t_cache.exited) return nullptr;
  t_releaser.armed = true;  // constructs it, registering its destructor
  t_active = &t_cache;
  return &t_cache;
}

}  // namespace

void* recycled_allocate(std::size_t size) {
  if (!kRecycling || size > kMaxRecycledSize) return ::operator new(size);
  const std::size_t c = class_of(size);
  if (Cache* cache = t_active) {
    if (FreeBlock* block = cache->pop(c)) return block;
  }
  // The class's full size, so that the block can serve any size of its class later.
  return ::operator new(class_size(c));
}

void recycled_deallocate(void* block, std::size_t size) noexcept {
  if constexpr (!kRecycling) {
    ::operator delete(block);
    return;
  }
  Cache* cache = t_active;
  if (cache == nullptr) cache = activate();
  const std::size_t c = class_of(size);
  if (size > kMaxRecycledSize || cache == nullptr || !cache->make_room(c)) {
    ::operator delete(block);
    return;
  }
  cache->push(c, block);
}

std::size_t recycled_cached_bytes() noexcept { return t_cache.bytes; }

}  // namespace weft::detail
