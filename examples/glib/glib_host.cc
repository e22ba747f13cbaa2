// weft_glib_host: a GLib application with weft as its guest.
//
// The GLib main loop owns the main thread and prints "[glib] tick" every 100 ms from its own
// timeout source. weft runs the seed scenario inside it, on the same thread, without blocking
// it: the ticks keep their cadence while weft's task sleeps and its timers fire.
//
//   weft_glib_host [BACKEND]        (default: $WEFT_BACKEND, else the first backend)
#include <glib.h>

#include <chrono>
#include <cstdio>
#include <exception>

#include "examples/glib/weft_glib.h"
#include "weft/core/deferred.h"
#include "weft/core/errors.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"
#include "weft/runners/guest_reactor.h"

namespace {

using namespace std::chrono_literals;

const weft::TimePoint start = weft::Clock::now();

void say(const char* who, const char* line) {
  std::printf("[%5.2fs] [%s] %s\n",
              std::chrono::duration<double>(weft::Clock::now() - start).count(), who, line);
}

weft::Task<void> seed_scenario() {
  weft::Reactor& reactor = *weft::Reactor::current();
  reactor.call_later(100ms, [] { say("weft", "Hanging out!"); });
  reactor.call_later(500ms, [] { say("weft", "Partying hard!"); });
  say("weft", "Going to sleep...");
  co_await weft::sleep(1s);
  say("weft", "I HAVE AWAKENED!");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    weft::GuestReactor guest(argc > 1 ? argv[1] : "");
    std::printf("weft %s as a guest of the GLib main loop (%s)\n",
                guest.reactor().description().c_str(),
                guest.uses_helper_thread() ? "waiting on a helper thread" : "GLib polls its fd");
    GMainLoop* loop = g_main_loop_new(nullptr, FALSE);
    GSource* source = weft::glib::attach(guest);
    g_timeout_add(
        100,
        [](gpointer) -> gboolean {
          say("glib", "tick");
          return G_SOURCE_CONTINUE;
        },
        nullptr);
    weft::Deferred<void> done = weft::spawn(guest.reactor(), seed_scenario());
    done.add_done([loop] { g_main_loop_quit(loop); });
    g_main_loop_run(loop);
    done.check();
    g_source_destroy(source);
    g_source_unref(source);
    g_main_loop_unref(loop);
  } catch (const weft::UnknownNameError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft_glib_host: %s\n", e.what());
    return 1;
  }
  return 0;
}
