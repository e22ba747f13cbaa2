// Deferred on its own: firing, consumers, cancellation, unhandled errors. No
// reactor needed.
#include "weft/core/deferred.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weft/core/errors.h"

namespace weft {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(Deferred, CallbacksRunInTheOrderAddedWithTheSameValue) {
  Deferred<int> d;
  std::vector<std::string> log;
  d.add_callback([&](int v) { log.push_back("first " + std::to_string(v)); });
  d.add_callbacks([&](int v) { log.push_back("second " + std::to_string(v)); },
                  [&](std::exception_ptr) { log.push_back("errback"); });
  EXPECT_TRUE(log.empty());
  d.callback(7);
  EXPECT_THAT(log, ElementsAre("first 7", "second 7"));
  d.add_callback([&](int v) { log.push_back("late " + std::to_string(v)); });
  EXPECT_THAT(log, ElementsAre("first 7", "second 7", "late 7"))
      << "added after firing: runs at once";
  EXPECT_EQ(d.value(), 7);
}

TEST(Deferred, ErrbacksSeeTheError) {
  Deferred<int> d;
  std::string seen;
  bool value_called = false;
  d.add_callback([&](int) { value_called = true; });
  d.add_errback([&](std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::runtime_error& error) {
      seen = error.what();
    }
  });
  d.errback(std::runtime_error("bad"));
  EXPECT_FALSE(value_called);
  EXPECT_EQ(seen, "bad");
  EXPECT_TRUE(d.failed());
  EXPECT_THROW(d.value(), std::runtime_error);
}

TEST(Deferred, FiringTwiceThrowsAlreadyCalled) {
  Deferred<void> d;
  d.callback();
  EXPECT_THROW(d.callback(), AlreadyCalledError);
  EXPECT_THROW(d.errback(std::runtime_error("x")), AlreadyCalledError);
}

TEST(Deferred, CopiesShareOneResult) {
  Deferred<std::string> a;
  Deferred<std::string> b = a;
  a.callback("shared");
  EXPECT_TRUE(b.called());
  EXPECT_EQ(b.value(), "shared");
}

TEST(Deferred, CancelWithoutACancellerFailsWithCancelledAtOnce) {
  Deferred<int> d;
  bool errback = false;
  d.add_errback([&](std::exception_ptr) { errback = true; });
  d.cancel();
  EXPECT_TRUE(errback);
  EXPECT_THROW(d.check(), Cancelled);
  d.cancel();  // no effect once fired
}

TEST(Deferred, CancelCallsTheCancellerOnceAndTheProducerFiresIt) {
  int calls = 0;
  Deferred<int> d([&] { ++calls; });
  d.cancel();
  d.cancel();
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(d.called()) << "the producer decides how it ends";
  d.callback(5);  // e.g. it finished anyway
  EXPECT_EQ(d.value(), 5);
}

TEST(Deferred, CancelAfterFiringDoesNotCallTheCanceller) {
  int calls = 0;
  Deferred<int> d([&] { ++calls; });
  d.callback(1);
  d.cancel();
  EXPECT_EQ(calls, 0);
}

TEST(Deferred, ExceptionInACallbackIsReportedAndLaterCallbacksStillRun) {
  ::testing::internal::CaptureStderr();
  Deferred<int> d;
  bool second = false;
  d.add_callback([](int) { throw std::runtime_error("callback broke"); });
  d.add_callback([&](int) { second = true; });
  d.callback(1);
  EXPECT_TRUE(second);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), HasSubstr("callback broke"));
}

TEST(Deferred, UnhandledErrorIsReportedWhenTheLastCopyGoes) {
  ::testing::internal::CaptureStderr();
  {
    Deferred<int> d;
    d.errback(std::runtime_error("lost error"));
  }
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              HasSubstr("unhandled error in Deferred: lost error"));
}

TEST(Deferred, HandledOrCancelledErrorsAreNotReported) {
  ::testing::internal::CaptureStderr();
  {
    Deferred<int> handled;
    handled.add_errback([](std::exception_ptr) {});
    handled.errback(std::runtime_error("handled"));
    Deferred<int> looked_at;
    looked_at.errback(std::runtime_error("looked at"));
    EXPECT_NE(looked_at.error(), nullptr);
    Deferred<int> cancelled;
    cancelled.cancel();
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

TEST(Deferred, AddDoneRunsEitherWayAndDoesNotHandleTheError) {
  ::testing::internal::CaptureStderr();
  int done = 0;
  {
    Deferred<int> ok;
    ok.add_done([&] { ++done; });
    ok.callback(1);
    Deferred<int> bad;
    bad.add_done([&] { ++done; });
    bad.errback(std::runtime_error("still unhandled"));
  }
  EXPECT_EQ(done, 2);
  EXPECT_THAT(::testing::internal::GetCapturedStderr(), HasSubstr("still unhandled"));
}

}  // namespace
}  // namespace weft
