#include "weft/core/detail/recycler.h"

#include <malloc.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "weft/core/deferred.h"
#include "weft/core/task.h"

namespace weft::detail {
namespace {

#define SKIP_IF_RECYCLER_OFF() \
  if (!kRecycling) GTEST_SKIP() << "the recycler is off under AddressSanitizer"

// Every test starts and ends on a thread with an empty cache: each body runs on its own thread.
template <typename Body>
void on_fresh_thread(Body body) {
  std::thread thread(body);
  thread.join();
}

TEST(Recycler, AFreedBlockServesTheNextAllocationOfItsSizeClass) {
  SKIP_IF_RECYCLER_OFF();
  on_fresh_thread([] {
    void* block = recycled_allocate(100);
    recycled_deallocate(block, 100);
    EXPECT_EQ(recycled_cached_bytes(), 112u);  // 100 rounds up to the 16-byte class of 112
    EXPECT_EQ(recycled_allocate(97), block);   // same class
    EXPECT_EQ(recycled_cached_bytes(), 0u);
    recycled_deallocate(block, 97);
    void* other = recycled_allocate(113);  // the next class: a new block
    EXPECT_NE(other, block);
    recycled_deallocate(other, 113);
  });
}

TEST(Recycler, EveryBlockHoldsItsWholeClassAndBlocksDoNotOverlap) {
  // Fill blocks of every size up to the largest recycled one, free them, take them back at
  // other sizes of the same class and fill those whole: a block too small for its class would
  // overlap its neighbour (the pattern check below, and glibc's heap checks, catch it).
  on_fresh_thread([] {
    for (int round = 0; round < 2; ++round) {
      struct Filled {
        unsigned char* block;
        std::size_t size;
        unsigned char pattern;
      };
      std::vector<Filled> blocks;
      for (std::size_t size = 1; size <= kMaxRecycledSize + 64; ++size) {
        const std::size_t asked = round == 0 ? size : ((size + 15) / 16) * 16;  // class's top
        auto* block = static_cast<unsigned char*>(recycled_allocate(asked));
        ASSERT_EQ(reinterpret_cast<std::uintptr_t>(block) % __STDCPP_DEFAULT_NEW_ALIGNMENT__, 0u);
        const auto pattern = static_cast<unsigned char>(size * 7 + round);
        std::memset(block, pattern, asked);
        blocks.push_back({block, asked, pattern});
      }
      for (const Filled& filled : blocks) {
        for (std::size_t i = 0; i < filled.size; ++i) ASSERT_EQ(filled.block[i], filled.pattern);
      }
      for (const Filled& filled : blocks) recycled_deallocate(filled.block, filled.size);
    }
  });
}

TEST(Recycler, LargeBlocksAreNotCached) {
  on_fresh_thread([] {
    void* block = recycled_allocate(kMaxRecycledSize + 1);
    recycled_deallocate(block, kMaxRecycledSize + 1);
    EXPECT_EQ(recycled_cached_bytes(), 0u);
  });
}

TEST(Recycler, TheCacheNeverHoldsMoreThanItsBound) {
  SKIP_IF_RECYCLER_OFF();
  on_fresh_thread([] {
    const std::size_t count = 2 * kMaxCachedBytes / kMaxRecycledSize;
    std::vector<void*> blocks;
    for (std::size_t i = 0; i < count; ++i) blocks.push_back(recycled_allocate(kMaxRecycledSize));
    for (void* block : blocks) {
      recycled_deallocate(block, kMaxRecycledSize);
      ASSERT_LE(recycled_cached_bytes(), kMaxCachedBytes);
    }
    EXPECT_EQ(recycled_cached_bytes(), kMaxCachedBytes);
    blocks.clear();
    for (std::size_t i = 0; i < count; ++i) blocks.push_back(recycled_allocate(kMaxRecycledSize));
    EXPECT_EQ(recycled_cached_bytes(), 0u);
    for (void* block : blocks) recycled_deallocate(block, kMaxRecycledSize);
  });
}

// Allocates `bytes` worth of blocks of `size` at once, then frees them all: the cache's view of
// a burst of tasks of one frame size.
void release(std::size_t size, std::size_t bytes) {
  std::vector<void*> blocks;
  for (std::size_t i = 0; i < bytes / size; ++i) blocks.push_back(recycled_allocate(size));
  for (void* block : blocks) recycled_deallocate(block, size);
}

TEST(Recycler, WhenFullASizeNoLongerUsedGivesWayToTheOnesInUse) {
  SKIP_IF_RECYCLER_OFF();
  on_fresh_thread([] {
    release(1024, kMaxCachedBytes);  // a phase of the thread's life that used 1 KiB frames
    ASSERT_EQ(recycled_cached_bytes(), kMaxCachedBytes);
    release(64, kMaxCachedBytes);  // the next one uses 64-byte frames, as many bytes' worth
    // The cache is shared out: the 64-byte class holds as much as the 1 KiB class now
    // (within one 1 KiB block), and the total is still the bound.
    EXPECT_LE(recycled_cached_bytes(), kMaxCachedBytes);
    std::size_t small = 0;
    std::vector<void*> taken;
    while (small < kMaxCachedBytes && recycled_cached_bytes() > 0) {
      const std::size_t cached = recycled_cached_bytes();
      void* block = recycled_allocate(64);
      taken.push_back(block);
      if (recycled_cached_bytes() == cached) break;  // a new block: the class is empty
      small += 64;
    }
    EXPECT_GE(small + 1024, kMaxCachedBytes / 2);
    EXPECT_LE(small, kMaxCachedBytes / 2 + 1024);
    for (void* block : taken) recycled_deallocate(block, 64);
  });
}

// Counts the blocks of `size`'s class the cache holds, by taking them (and gives them back).
std::size_t cached_blocks_of(std::size_t size) {
  std::vector<void*> taken;
  std::size_t cached = 0;
  for (;;) {
    const std::size_t before = recycled_cached_bytes();
    taken.push_back(recycled_allocate(size));
    if (recycled_cached_bytes() == before) break;  // a new block: the class is empty
    ++cached;
  }
  // The new block last, so that the others go back into the cache (it is not full now).
  for (void* block : taken) recycled_deallocate(block, size);
  return cached;
}

TEST(Recycler, WhenFullTheClassHoldingTheMostGivesWayEvenAfterOthersShrank) {
  SKIP_IF_RECYCLER_OFF();
  on_fresh_thread([] {
    release(1024, kMaxCachedBytes / 2);  // the fullest class
    release(512, kMaxCachedBytes / 2);   // as full: the cache is full
    // Allocations shrink the 1 KiB class to a few blocks; the 512-byte class now holds the most.
    std::vector<void*> in_use;
    for (std::size_t i = 0; i < kMaxCachedBytes / 2 / 1024 - 4; ++i) {
      in_use.push_back(recycled_allocate(1024));
    }
    // 64-byte blocks fill the room that left, and then must take the 512-byte class's place.
    release(64, kMaxCachedBytes);
    const std::size_t small = cached_blocks_of(64) * 64;
    const std::size_t medium = cached_blocks_of(512) * 512;
    EXPECT_GT(small, kMaxCachedBytes / 2 - 4096) << "the 64-byte class did not grow past " << small;
    EXPECT_LT(medium, kMaxCachedBytes / 2) << "the 512-byte class gave nothing up";
    for (void* block : in_use) recycled_deallocate(block, 1024);
  });
}

TEST(Recycler, ABlockFreedOnAnotherThreadJoinsThatThreadsCache) {
  SKIP_IF_RECYCLER_OFF();
  void* block = nullptr;
  on_fresh_thread([&] { block = recycled_allocate(64); });
  on_fresh_thread([&] {
    recycled_deallocate(block, 64);
    EXPECT_EQ(recycled_cached_bytes(), 64u);
    EXPECT_EQ(recycled_allocate(64), block);
    recycled_deallocate(block, 64);
  });
}

TEST(Recycler, AThreadsCacheIsFreedWhenItExits) {
  // mallinfo2 sums every arena; a cache kept after its thread exited would stay counted.
  // A first thread, so that the arena the threads use exists before the first count.
  on_fresh_thread([&] { recycled_deallocate(::operator new(16), 16); });
  const std::size_t before = mallinfo2().uordblks;
  on_fresh_thread([] {
    std::vector<void*> blocks;
    for (int i = 0; i < 2000; ++i) blocks.push_back(recycled_allocate(512));
    for (void* block : blocks) recycled_deallocate(block, 512);
  });
  const std::size_t after = mallinfo2().uordblks;
  EXPECT_LT(after, before + 64 * 1024) << "2000 blocks of 512 bytes were cached by the thread";
}

// Made before the cache on its thread, so destroyed after it: what it frees then must bypass
// the cache (which would otherwise be rebuilt, and leaked, after its release).
struct FreesAtThreadExit {
  void* block = nullptr;
  std::size_t* cached_after = nullptr;
  ~FreesAtThreadExit() {
    recycled_deallocate(block, 64);
    *cached_after = recycled_cached_bytes();
  }
};

TEST(Recycler, ABlockFreedAfterTheCacheWasReleasedBypassesIt) {
  SKIP_IF_RECYCLER_OFF();
  std::size_t cached_after = 12345;
  on_fresh_thread([&] {
    static thread_local FreesAtThreadExit late;  // constructed first on this thread
    late.block = recycled_allocate(64);
    late.cached_after = &cached_after;
    recycled_deallocate(recycled_allocate(32), 32);  // the cache comes to life after `late`
    EXPECT_EQ(recycled_cached_bytes(), 32u);
  });
  EXPECT_EQ(cached_after, 0u);
}

Task<int> answer() { co_return 42; }

TEST(Recycler, TaskFramesAndDeferredStatesAreRecycled) {
  SKIP_IF_RECYCLER_OFF();
  on_fresh_thread([] {
    { Task<int> task = answer(); }  // a frame made and destroyed unstarted
    const std::size_t frame = recycled_cached_bytes();
    EXPECT_GT(frame, 0u);
    {
      Task<int> again = answer();
      EXPECT_EQ(recycled_cached_bytes(), 0u);  // the same block
    }
    { Deferred<int> deferred; }
    EXPECT_GT(recycled_cached_bytes(), frame);
  });
}

}  // namespace
}  // namespace weft::detail
