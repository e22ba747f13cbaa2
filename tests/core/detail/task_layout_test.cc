// What every spawned task costs in memory before its own frame: the block holding its
// Deferred's state and its context (bench/analysis.md, "Memory per task"). Sizes are the ABI's
// (LP64, Itanium: a base's or a [[no_unique_address]] member's tail padding holds the next
// small members); a field added to either part shows here first.
#include <cstdint>

#include "gtest/gtest.h"
#include "weft/core/spawn.h"

namespace weft::detail {
namespace {

#if defined(__GNUC__) && UINTPTR_MAX == UINT64_MAX
constexpr bool kItaniumLp64 = true;
#else
constexpr bool kItaniumLp64 = false;
#endif

TEST(TaskLayout, ADeferredsFlagsSitAfterItsCount) {
  if (!kItaniumLp64) GTEST_SKIP() << "sizes checked for the LP64 Itanium ABI only";
  EXPECT_EQ(sizeof(DeferredState<void>), 72u);
}

TEST(TaskLayout, ATaskContextsFlagSitsInItsRootScopesPadding) {
  if (!kItaniumLp64) GTEST_SKIP() << "sizes checked for the LP64 Itanium ABI only";
  EXPECT_EQ(sizeof(TaskContext), 128u);
  TaskContext context;
  context.root_scope.cancelled = true;
  context.root_scope.effective = true;
  context.root_scope.shield = true;
  context.deadlock_exempt = true;
  EXPECT_TRUE(context.root_scope.cancelled && context.root_scope.effective &&
              context.root_scope.shield && context.deadlock_exempt);
  context.root_scope.shield = false;  // a write to the node leaves the flag beside it alone
  EXPECT_TRUE(context.deadlock_exempt);
}

TEST(TaskLayout, ASpawnedTasksBlockIsInTheRecyclers208ByteClass) {
  if (!kItaniumLp64) GTEST_SKIP() << "sizes checked for the LP64 Itanium ABI only";
  EXPECT_EQ(sizeof(SpawnedTask<void>), 208u);
  EXPECT_EQ(RecyclerCache::class_size(RecyclerCache::class_of(sizeof(SpawnedTask<void>))), 208u);
}

}  // namespace
}  // namespace weft::detail
