// Long chains of tasks awaiting each other, and cancellation reaching the awaited work however
// it arrives: written once, run on every backend.
//
// Deferred::callback() resumes its awaiters; if each resumption ran nested inside the previous
// one, a chain of tasks each awaiting the last one's Deferred would use stack in proportion to
// its length (about 45,000 deep overflowed an 8 MiB main thread; 1,400 a 256 KiB thread). The
// chains below run on a 256 KiB thread.
#include <pthread.h>

#include <functional>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "weft/core/deferred.h"
#include "weft/core/errors.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using AwaitChain = testing::ReactorTest;

// Runs `body` on a thread with a small stack, where unbounded recursion fails fast.
void on_small_stack(std::function<void()> body) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_t thread;
  auto* heap_body = new std::function<void()>(std::move(body));
  ASSERT_EQ(
      pthread_create(
          &thread, &attr,
          [](void* arg) -> void* {
            std::unique_ptr<std::function<void()>> f(static_cast<std::function<void()>*>(arg));
            (*f)();
            return nullptr;
          },
          heap_body),
      0);
  pthread_attr_destroy(&attr);
  pthread_join(thread, nullptr);
}

Task<int> await_previous(Deferred<int> previous) { co_return co_await previous + 1; }

TEST_P(AwaitChain, ChainOfTasksAwaitingEachOthersDeferredsUnwindsInBoundedStack) {
  constexpr int kLength = 100'000;
  on_small_stack([&] {
    std::unique_ptr<Reactor> reactor = make_reactor(GetParam());
    Deferred<int> first;
    Deferred<int> last = first;
    for (int i = 0; i < kLength; ++i) last = spawn(*reactor, await_previous(last));
    while (reactor->counts().ready > 0) reactor->run_once(false);  // every task suspended
    first.callback(0);  // every resumption happens inside this call, without nesting
    ASSERT_TRUE(last.called());
    EXPECT_EQ(last.value(), kLength);
    EXPECT_EQ(reactor->counts().tasks, 0u);
  });
}

Task<int> spawn_recursively(int depth) {
  if (depth == 0) {
    co_await sleep(0ms);
    co_return 0;
  }
  Reactor& reactor = *Reactor::current();
  co_return co_await spawn(reactor, spawn_recursively(depth - 1)) + 1;
}

TEST_P(AwaitChain, RecursionThroughSpawnUnwindsInBoundedStack) {
  constexpr int kDepth = 20'000;
  on_small_stack([&] {
    std::unique_ptr<Reactor> reactor = make_reactor(GetParam());
    Deferred<int> done = spawn(*reactor, spawn_recursively(kDepth));
    const auto deadline = Clock::now() + 60s;
    while (!done.called() && Clock::now() < deadline) reactor->run_once(false);
    ASSERT_TRUE(done.called());
    EXPECT_EQ(done.value(), kDepth);
  });
}

TEST_P(AwaitChain, TaskCancelledBeforeItReachesTheAwaitCancelsTheAwaitedDeferred) {
  // The cancellation arrives while the task is running (not suspended): it is pending when the
  // task reaches `co_await child`, and must still cancel the child.
  auto child_body = []() -> Task<void> { co_await sleep(1h); };
  Deferred<void> child;
  auto self = std::make_shared<Deferred<void>>();
  auto parent_body = [](std::shared_ptr<Deferred<void>> self, Deferred<void>* child,
                        Reactor* reactor, auto child_body) -> Task<void> {
    *child = spawn(*reactor, child_body());
    self->cancel();  // our own cancellation, while we run
    co_await *child;
  };
  *self = spawn(reactor(), parent_body(self, &child, &reactor(), child_body));
  ASSERT_TRUE(run_until([&] { return self->called() && child.called(); }, 5s));
  EXPECT_THROW(self->check(), Cancelled);
  EXPECT_THROW(child.check(), Cancelled) << "the awaited child was orphaned";
}

TEST_P(AwaitChain, TaskCancelledWhileSuspendedCancelsTheAwaitedDeferred) {
  auto child_body = []() -> Task<void> { co_await sleep(1h); };
  Deferred<void> child = spawn(reactor(), child_body());
  auto parent_body = [](Deferred<void> child) -> Task<void> { co_await child; };
  Deferred<void> parent = spawn(reactor(), parent_body(child));
  reactor().run_once(false);
  reactor().run_once(false);
  parent.cancel();
  ASSERT_TRUE(run_until([&] { return parent.called() && child.called(); }, 5s));
  EXPECT_THROW(parent.check(), Cancelled);
  EXPECT_THROW(child.check(), Cancelled);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, AwaitChain, ::testing::ValuesIn(testing::backend_names()),
                         testing::param_name);

}  // namespace
}  // namespace weft
