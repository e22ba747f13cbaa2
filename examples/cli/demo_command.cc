#include "examples/cli/demo_command.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "examples/cli/options.h"
#include "weft/core/cancel_scope.h"
#include "weft/core/context.h"
#include "weft/core/reactor.h"
#include "weft/core/sleep.h"
#include "weft/core/task.h"
#include "weft/core/virtual_clock.h"
#include "weft/runners/root_group.h"
#include "weft/runners/runner.h"
#include "weft/runners/runner_registry.h"

#if WEFT_HAVE_GLIB
#include <glib.h>

#include <condition_variable>

#include "examples/glib/weft_glib.h"
#include "weft/runners/guest_reactor.h"
#endif

namespace weft::cli {
namespace {

using namespace std::chrono_literals;

constexpr const char* kDemoUsage =
    "usage: weft demo [--backend NAME] [--runner NAME] [--clock NAME]\n"
    "  the seed scenario in two notebook \"cells\"; each line is tagged with the cell whose\n"
    "  work printed it (the ticker started by cell 1 keeps saying [cell 1] during cell 2)\n"
    "  --backend NAME   the backend (default: $WEFT_BACKEND, else the first of `weft backends`)\n"
    "  --runner NAME    the runner (default: $WEFT_RUNNER, else the first of `weft runners`);\n"
    "                   with \"host\", the host application is a GLib main loop on its own thread\n"
    "  --clock NAME     steady (default: real time) or virtual: exact timestamps, at once\n"
    "                   (docs/time.md); the 0.5 s between the cells pass on the virtual clock\n"
    "  -h, --help       this text\n";

// What the command line chose. A new option is a field here and a case in parse_options().
struct DemoOptions {
  std::string backend;  // empty: $WEFT_BACKEND, else the default
  std::string runner;   // empty: $WEFT_RUNNER, else the default
  std::string clock;    // empty: steady_clock; "virtual": core/virtual_clock.h
};

// Parses `args` into `options`; returns an exit status if the command ends here (--help, a
// bad option), nullopt to go on.
std::optional<int> parse_options(const std::vector<std::string_view>& args, DemoOptions& options) {
  return parse_command_line(args, {.command = "demo",
                                   .usage = kDemoUsage,
                                   .options = {{"--backend", "name", &options.backend},
                                               {"--runner", "name", &options.runner},
                                               {"--clock", "name", &options.clock}}});
}

// The cell a piece of work belongs to: bound by run_cell(), carried by everything the cell
// starts (its timers, its background ticker).
ContextVar<std::string> g_cell("cell");

// Prints one line with the time since the demo started and the cell it belongs to; any
// thread.
class Narrator {
 public:
  void say(std::string_view line) {
    const std::string* cell = g_cell.get();
    std::lock_guard lock(mu_);
    // Virtual time is exact: to the millisecond.
    const Duration elapsed = clock_ != nullptr ? clock_->elapsed() : Clock::now() - start_;
    const double seconds = std::chrono::duration<double>(elapsed).count();
    std::printf(clock_ != nullptr ? "[%6.3fs] %s%s%s%.*s\n" : "[%5.2fs] %s%s%s%.*s\n", seconds,
                cell != nullptr ? "[" : "", cell != nullptr ? cell->c_str() : "",
                cell != nullptr ? "] " : "", static_cast<int>(line.size()), line.data());
    std::fflush(stdout);
  }
  // On virtual time: the runner's clock, which starts with the runner (thread-safe). Call
  // before anything is said.
  void use_clock(const VirtualClock* clock) { clock_ = clock; }

 private:
  std::mutex mu_;
  const TimePoint start_ = Clock::now();
  const VirtualClock* clock_ = nullptr;
};

// The seed's NoiseMaker: prints every 100 ms in the background until stopped.
struct NoiseMaker {
  explicit NoiseMaker(Narrator& narrator) : narrator(narrator) {}
  Narrator& narrator;
  std::atomic<int> noises{0};
  CancelScope stop;  // the ticker runs in it; cell 2 cancels it (loop thread)
};

Task<void> tick(NoiseMaker& noise) {
  for (;;) {
    co_await sleep(100ms);
    noise.narrator.say("LOUD NOISES!");
    ++noise.noises;
  }
}

Task<void> make_noise(NoiseMaker& noise) { co_await noise.stop.run(tick(noise)); }

// Cell 1, the seed scenario: Twisted's callLater(0.1) and callLater(0.5) beside an awaited
// sleep(1); then it starts the ticker, which outlives the cell: background work of the
// runner, which cancels and awaits it if it is still running at shutdown.
Task<void> first_cell(Narrator& narrator, NoiseMaker& noise) {
  Reactor& reactor = *Reactor::current();
  reactor.call_later(100ms, [&narrator] { narrator.say("Hanging out!"); });
  reactor.call_later(500ms, [&narrator] { narrator.say("Partying hard!"); });
  narrator.say("Going to sleep...");
  co_await sleep(1s);
  narrator.say("I HAVE AWAKENED!");
  start_background("ticker", make_noise(noise));
}

// Cell 2: a little more work, then the ticker is stopped.
Task<void> second_cell(NoiseMaker& noise) {
  co_await sleep(250ms);
  noise.stop.cancel();
  noise.narrator.say("ticker stopped");
}

// On virtual time, time jumps ahead (autojump) only while a cell runs, as time passes in a
// notebook while a cell awaits; between cells it moves only as much as the main thread sleeps
// (else the ticker, left running by cell 1, would race through time on its own). Switched on
// and off on the loop thread, inside the cell's task, so that no jump slips in between.
template <typename T>
Task<T> on_cell_time(VirtualClock* clock, Task<T> task) {
  struct Autojump {
    VirtualClock* clock;
    explicit Autojump(VirtualClock* c) : clock(c) {
      if (clock != nullptr) clock->set_autojump(true);
    }
    ~Autojump() {
      if (clock != nullptr) clock->set_autojump(false);
    }
  } autojump(clock);
  co_return co_await std::move(task);
}

// Runs `task` as notebook cell `number`: in a fresh context naming the cell, so that the
// cell's work (and everything it starts) is attributed to it, and nothing it binds leaks
// into the next cell.
template <typename T>
T run_cell(Runner& runner, int number, Task<T> task) {
  std::printf("-- cell %d\n", number);
  std::fflush(stdout);
  return Context::root().run([&] {
    g_cell.set("cell " + std::to_string(number));
    return runner.run(on_cell_time(VirtualClock::find(runner.reactor()), std::move(task)));
  });
}

#if WEFT_HAVE_GLIB
// The host application for `--runner host`: a GLib main loop on a thread of its own, with weft
// as its guest (ipykernel's already-running loop, in the seed's story).
class GlibHost {
 public:
  GlibHost(std::string backend, std::string clock) {
    std::exception_ptr error;
    thread_ = std::thread([this, backend, clock, &error] {
      GMainContext* context = g_main_context_new();
      g_main_context_push_thread_default(context);
      std::optional<GuestReactor> guest;
      try {
        guest.emplace(backend, GuestReactor::Wait::kAuto, make_clock(clock));
      } catch (...) {
        error = std::current_exception();
      }
      GSource* source = guest ? glib::attach(*guest, context) : nullptr;
      {
        std::lock_guard lock(mu_);
        loop_ = guest ? g_main_loop_new(context, FALSE) : nullptr;
        reactor_ = guest ? &guest->reactor() : nullptr;
        ready_ = true;
        cv_.notify_one();
      }
      if (guest) {
        g_main_loop_run(loop_);
        g_source_destroy(source);
        g_source_unref(source);
        guest.reset();
      }
      g_main_context_pop_thread_default(context);
      g_main_context_unref(context);
    });
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return ready_; });
    if (error) {
      lock.unlock();
      thread_.join();
      std::rethrow_exception(error);
    }
  }
  ~GlibHost() {
    g_main_loop_quit(loop_);  // thread-safe: wakes the loop's context
    thread_.join();
    g_main_loop_unref(loop_);
  }
  Reactor& reactor() { return *reactor_; }
  std::thread::id thread_id() const { return thread_.get_id(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = false;
  GMainLoop* loop_ = nullptr;
  Reactor* reactor_ = nullptr;
  std::thread thread_;
};
#endif

// The host application, when the runner needs one (it outlives the runner).
struct Host {
#if WEFT_HAVE_GLIB
  std::unique_ptr<GlibHost> glib;
#endif
};

// Makes the runner `options` name (and its host, if it needs one). Throws UnknownNameError
// for a bad name, std::runtime_error if the host runner cannot be offered.
std::unique_ptr<Runner> make_demo_runner(const DemoOptions& options, Host& host) {
  RunnerOptions runner_options{.backend = options.backend, .clock = options.clock};
  const RunnerInfo chosen = find_runner(options.runner);  // checks $WEFT_RUNNER too
  if (chosen.needs_host) {
#if WEFT_HAVE_GLIB
    host.glib = std::make_unique<GlibHost>(options.backend, options.clock);
    runner_options.host = &host.glib->reactor();
    runner_options.host_thread = host.glib->thread_id();
    std::printf("the host application: a GLib main loop on its own thread, weft its guest\n");
#else
    (void)host;
    throw std::runtime_error(
        "weft: the demo's host application is a GLib loop; this weft was built without GLib");
#endif
  }
  return make_runner(chosen.name, runner_options);
}

}  // namespace

int run_demo_command(const std::vector<std::string_view>& args) {
  DemoOptions options;
  if (std::optional<int> status = parse_options(args, options)) return *status;
  // Declared before the runner, so destroyed after it: the host's loop runs the runner's
  // work, and the ticker refers to the narrator and the noise maker until the runner's
  // shutdown has awaited it (even when an error unwinds this frame).
  Host host;
  Narrator narrator;
  NoiseMaker noise(narrator);
  std::unique_ptr<Runner> runner = make_demo_runner(options, host);
  VirtualClock* clock = VirtualClock::find(runner->reactor());
  if (clock != nullptr) {
    clock->set_autojump(false);  // on only while a cell runs (on_cell_time)
    narrator.use_clock(clock);
  }
  std::printf("weft demo: backend %s, runner %s\n", runner->reactor().description().c_str(),
              std::string(runner->name()).c_str());
  run_cell(*runner, 1, first_cell(narrator, noise));
  std::printf("-- between cells: the main thread sleeps 0.5 s\n");
  std::fflush(stdout);
  const int before = noise.noises;
  if (clock == nullptr) {
    std::this_thread::sleep_for(500ms);
  } else {
    // The 0.5 s pass on the virtual clock. A loop that runs between calls walks through them
    // now (the ticker ticks at each 0.1 s); waiting for the clock to get there is a task that
    // sleeps until then. The blocking runner's loop is paused between calls: it walks through
    // them at the start of cell 2.
    clock->advance(500ms);
    if (runner->name() != "blocking") {
      runner->run([](VirtualClock& clock) -> Task<void> {
        co_await sleep(clock.target() - clock.now());
        co_await sleep(0ms);  // the other timers due then (a tick) run in the same pass
      }(*clock));
    }
  }
  const int between = noise.noises - before;
  run_cell(*runner, 2, second_cell(noise));
  std::printf(
      "-- the ticker printed %d time%s while the main thread slept between "
      "cells (%s)\n",
      between, between == 1 ? "" : "s",
      between > 0 ? "the loop kept running" : "the loop was paused");
  // Shutting down cancels and awaits background work still running (none by now: cell 2
  // stopped the ticker).
  runner.reset();
  return 0;
}

}  // namespace weft::cli
