// Helpers for the net suites: run a task on the fixture's reactor to completion, loopback
// listeners, byte patterns.
#ifndef WEFT_TESTS_NET_NET_TESTING_H_
#define WEFT_TESTS_NET_NET_TESTING_H_

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "weft/core/deferred.h"
#include "weft/core/io_handle.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"
#include "weft/net/net.h"

namespace weft::testing {

// Registers a descriptor once on the current reactor: some backends open a descriptor of their
// own on first use (Asio's epoll set for descriptors), which in-test fd counts must not see.
inline Task<void> warm_up() {
  int fds[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  net::Stream a = net::Stream::adopt(*Reactor::current(), fds[0]);
  net::Stream b = net::Stream::adopt(*Reactor::current(), fds[1]);
  // The read waits (so the descriptor is registered with the backend), then the write wakes it.
  Deferred<void> read = spawn(*Reactor::current(), [](net::Stream& s) -> Task<void> {
    char byte;
    co_await s.read_some(std::span(&byte, 1));
  }(b));
  co_await sleep(std::chrono::milliseconds(1));  // the reader is waiting now
  co_await a.write_all("w");
  co_await read;
}

// Whether the current reactor's backend can watch descriptors numbered up to `highest` (select
// cannot reach past FD_SETSIZE): a capability, probed, so tests need not name backends.
inline bool can_watch_fds_up_to(int highest) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return false;
  const int high = fcntl(pair[0], F_DUPFD_CLOEXEC, highest);
  close(pair[0]);
  close(pair[1]);
  if (high < 0) return false;
  try {
    IoHandle probe(*Reactor::current(), high, [](IoEvents) {});
    probe.set_interest(IoEvents::kReadable);
    probe.reset();
  } catch (const std::system_error&) {
    close(high);
    return false;
  }
  close(high);
  return true;
}

class NetTest : public ReactorTest {
 protected:
  void SetUp() override {
    ReactorTest::SetUp();
    run(warm_up());
  }

  // Runs `task` to completion on the reactor and returns its value (rethrows its error).
  template <typename T>
  T run(Task<T> task, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> result;
    Deferred<void> done = spawn(reactor(), finish(std::move(task), result));
    if (!run_until([&] { return done.called(); }, limit)) {
      done.cancel();
      run_until([&] { return done.called(); });
    }
    done.check();
    if constexpr (!std::is_void_v<T>) return std::move(*result);
  }

  // Runs the loop for `duration` (letting work in flight progress).
  void spin(std::chrono::milliseconds duration) {
    const TimePoint until = Clock::now() + duration;
    TimerHandle alarm = reactor().call_at(until, [] {});
    while (Clock::now() < until) reactor().run_once(true);
    alarm.cancel();
  }

 private:
  template <typename T, typename R>
  static Task<void> finish(Task<T> task, std::optional<R>& result) {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(task);
      result.emplace(true);
    } else {
      result.emplace(co_await std::move(task));
    }
  }
};

// Deterministic bytes, so a transfer can be checked end to end.
inline std::vector<std::byte> pattern(std::size_t size, unsigned seed = 1) {
  std::vector<std::byte> bytes(size);
  std::uint32_t x = seed * 2654435761u + 1;
  for (std::byte& b : bytes) {
    x = x * 1103515245u + 12345u;
    b = static_cast<std::byte>(x >> 16);
  }
  return bytes;
}

inline std::string as_string(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

}  // namespace weft::testing

#endif  // WEFT_TESTS_NET_NET_TESTING_H_
