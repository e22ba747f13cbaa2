// The GLib host: a GLib timeout ticks every 10 ms while weft tasks (sleeps, timers, an fd wait,
// a cross-thread call) run as a guest on the same thread. Both must make progress, interleaved,
// and every weft callback must run on the GLib thread. On every backend, both wait modes.
#include "examples/glib/weft_glib.h"

#include <glib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "tests/testing/host_loop.h"
#include "weft/core/deferred.h"
#include "weft/core/fd_wait.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using Param = testing::GuestParam;

class GlibHostTest : public ::testing::TestWithParam<Param> {};

TEST_P(GlibHostTest, GlibAndWeftBothMakeProgressInterleavedOnTheGlibThread) {
  GMainContext* context = g_main_context_new();
  g_main_context_push_thread_default(context);
  GMainLoop* loop = g_main_loop_new(context, FALSE);
  GuestReactor guest(std::get<0>(GetParam()), std::get<1>(GetParam()));
  GSource* source = glib::attach(guest, context);

  std::vector<char> events;  // 'g': a GLib tick, 'w': a weft callback; GLib thread only
  const std::thread::id glib_thread = std::this_thread::get_id();
  std::atomic<int> off_thread{0};
  auto weft_event = [&] {
    if (std::this_thread::get_id() != glib_thread) ++off_thread;
    events.push_back('w');
  };
  GSource* tick = g_timeout_source_new(10);
  struct TickState {
    std::vector<char>* events;
  } tick_state{&events};
  g_source_set_callback(
      tick,
      [](gpointer data) -> gboolean {
        static_cast<TickState*>(data)->events->push_back('g');
        return G_SOURCE_CONTINUE;
      },
      &tick_state, nullptr);
  g_source_attach(tick, context);

  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  Reactor& reactor = guest.reactor();
  auto sleeper = [&]() -> Task<void> {
    for (int i = 0; i < 10; ++i) {
      co_await sleep(7ms);
      weft_event();
    }
  };
  auto reader = [&]() -> Task<void> {
    co_await wait_readable(fds[0]);
    char c;
    EXPECT_EQ(read(fds[0], &c, 1), 1);
    weft_event();
  };
  Deferred<void> slept = spawn(reactor, sleeper());
  Deferred<void> read_done = spawn(reactor, reader());
  reactor.call_later(25ms, weft_event);
  std::atomic<bool> crossed{false};
  std::thread other([&] {
    std::this_thread::sleep_for(15ms);
    reactor.call_from_thread([&] {
      weft_event();
      crossed = true;
    });
    std::this_thread::sleep_for(15ms);
    EXPECT_EQ(write(fds[1], "x", 1), 1);
  });
  int pending = 2;
  auto finish = [&] {
    if (--pending == 0) g_main_loop_quit(loop);
  };
  slept.add_done(finish);
  read_done.add_done(finish);
  // Safety net so a broken integration fails instead of hanging.
  GSource* guard = g_timeout_source_new(20'000);
  g_source_set_callback(
      guard,
      [](gpointer data) -> gboolean {
        g_main_loop_quit(static_cast<GMainLoop*>(data));
        return G_SOURCE_REMOVE;
      },
      loop, nullptr);
  g_source_attach(guard, context);

  g_main_loop_run(loop);
  other.join();

  EXPECT_TRUE(slept.called());
  EXPECT_TRUE(read_done.called());
  EXPECT_TRUE(crossed);
  EXPECT_EQ(off_thread.load(), 0) << "a weft callback ran off the GLib thread";
  const auto glib_ticks = std::count(events.begin(), events.end(), 'g');
  const auto weft_events = std::count(events.begin(), events.end(), 'w');
  EXPECT_EQ(weft_events, 13);
  EXPECT_GE(glib_ticks, 3) << "GLib's own timeout kept running";
  // Interleaved: GLib ticked between the first and the last weft event.
  const auto first_w = std::find(events.begin(), events.end(), 'w');
  const auto last_w = std::find(events.rbegin(), events.rend(), 'w').base();
  EXPECT_GT(std::count(first_w, last_w, 'g'), 0) << std::string(events.begin(), events.end());

  g_source_destroy(guard);
  g_source_unref(guard);
  g_source_destroy(tick);
  g_source_unref(tick);
  g_source_destroy(source);
  g_source_unref(source);
  g_main_loop_unref(loop);
  g_main_context_pop_thread_default(context);
  g_main_context_unref(context);
  close(fds[0]);
  close(fds[1]);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, GlibHostTest, testing::guest_params(),
                         testing::guest_param_name);

}  // namespace
}  // namespace weft
