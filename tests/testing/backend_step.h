// step_blocking: one blocking run_once() of a bare Backend, ended by a wake() from another thread
// after `limit` if nothing else ends it, so a backend that fails to deliver shows as a test
// failure instead of a hang. For tests that drive the Backend contract without a Reactor.
#ifndef WEFT_TESTS_TESTING_BACKEND_STEP_H_
#define WEFT_TESTS_TESTING_BACKEND_STEP_H_

#include <condition_variable>
#include <mutex>
#include <thread>

#include "weft/core/backend.h"
#include "weft/core/time.h"

namespace weft::testing {

// Returns how long the step took. Threading: the backend's loop thread.
inline Duration step_blocking(Backend& backend, Duration limit) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  // Timed from before the watchdog exists: a step that its wake ended then measures at least
  // `limit` (starting the thread can take milliseconds, under TSan especially).
  const TimePoint start = Clock::now();
  std::thread watchdog([&] {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, limit, [&] { return done; })) backend.wake();
  });
  backend.run_once(true);
  const Duration took = Clock::now() - start;
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_one();
  watchdog.join();
  return took;
}

}  // namespace weft::testing

#endif  // WEFT_TESTS_TESTING_BACKEND_STEP_H_
