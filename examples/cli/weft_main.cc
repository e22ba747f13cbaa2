// weft: the command-line front door.
//
//   weft backends                  backends compiled in, one a line, default marked
//   weft runners                   runners registered, one a line, default marked
//   weft demo [--backend NAME] [--runner NAME]
//                                  the seed scenario (see --help)
//
// Names fall back to $WEFT_BACKEND / $WEFT_RUNNER, then to the defaults. A bad
// command, flag or name (an empty one, or a bad $WEFT_BACKEND / $WEFT_RUNNER,
// included) exits with status 2 and a message listing what is valid. Any other
// failure, an output that cannot be written (closed, full) included, exits
// with status 1 and a message on stderr.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "weft/core/backend_registry.h"
#include "weft/core/deferred.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"
#include "weft/core/task.h"
#include "examples/cli/get_command.h"
#include "weft/runners/runner.h"
#include "weft/runners/runner_registry.h"

#if WEFT_HAVE_GLIB
#include <glib.h>

#include <condition_variable>

#include "examples/glib/weft_glib.h"
#include "weft/runners/guest_reactor.h"
#endif

namespace {

using namespace std::chrono_literals;

constexpr const char* kUsage = R"(usage: weft <command> [options]

commands:
  backends     list the backends compiled in (the default is marked)
  runners      list the runners registered (the default is marked)
  demo         run the demonstration in two "cells", as in a notebook:
               cell 1: a task prints "Going to sleep...", awaits a 1 s sleep while two
                 background timers print "Hanging out!" (0.1 s) and "Partying hard!" (0.5 s),
                 then prints "I HAVE AWAKENED!" and starts a ticker ("LOUD NOISES!" every 0.1 s)
               the main thread then sleeps 0.5 s: with --runner threaded the ticker keeps
                 printing, with --runner blocking the loop (and the ticker) is paused
               cell 2: awaits 0.25 s, then stops the ticker
  get URL      fetches an http:// URL with weft's network layer and prints the body
               (exit 1 for a refused connection, a timeout or a non-2xx status)

options (demo, get):
  --backend NAME   the backend (default: $WEFT_BACKEND, else the first listed by `weft backends`)
  --runner NAME    the runner (default: $WEFT_RUNNER, else the first listed by `weft runners`);
                   with "host", the host application is a GLib main loop on another thread
  -h, --help       this text

A bad command, option or name exits with status 2 and lists the valid ones.
)";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "weft: %s\n\n%s", message.c_str(), kUsage);
  return 2;
}

// Prints an error that escaped a command. weft's own messages already start with "weft: ".
void print_error(const std::exception& e) {
  const std::string_view what = e.what();
  std::fprintf(stderr, "%s%.*s\n",
               what.starts_with("weft: ") ? "" : "weft: ", static_cast<int>(what.size()),
               what.data());
}

// Descriptors 0, 1 and 2 must stay taken: a library that opens a descriptor while one of them
// is closed gets its number (libuv then aborts, and printf would write into an epoll or pipe
// descriptor). Fills a closed one with /dev/null; returns which of them were closed.
struct ClosedStdio {
  bool in = false;
  bool out = false;
  bool err = false;
};
ClosedStdio plug_closed_stdio() {
  ClosedStdio closed;
  bool* flags[3] = {&closed.in, &closed.out, &closed.err};
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    *flags[fd] = true;
    const int plug = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (plug >= 0 && plug != fd) {
      dup2(plug, fd);
      close(plug);
    }
  }
  return closed;
}

// Flushes standard output; on a write error (a full disk, a closed pipe's EPIPE when SIGPIPE
// is ignored, ...) says so on stderr and returns 1, else `status`.
int finish_output(int status) {
  errno = 0;
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    const int error = errno;
    std::fprintf(stderr, "weft: error writing to standard output: %s\n",
                 error != 0 ? std::strerror(error) : "write failed");
    return status == 0 ? 1 : status;
  }
  return status;
}

int list_backends() {
  // The default is checked, not just printed: a bad $WEFT_BACKEND is an error (status 2, the
  // valid names listed), not a listing with no default marked.
  const std::string fallback = weft::find_backend().name;
  for (const weft::BackendInfo& info : weft::available_backends()) {
    std::printf("%s%s\n", info.label().c_str(), info.name == fallback ? "  [default]" : "");
  }
  return 0;
}

int list_runners() {
  const std::string fallback = weft::find_runner().name;
  for (const weft::RunnerInfo& info : weft::available_runners()) {
    std::printf("%-10s%-11s %s\n", info.name.c_str(), info.name == fallback ? "[default]" : "",
                info.summary.c_str());
  }
  return 0;
}

// Prints one line with the time since the demo started; any thread.
class Narrator {
 public:
  void say(std::string_view line) {
    std::lock_guard lock(mu_);
    const double seconds = std::chrono::duration<double>(weft::Clock::now() - start_).count();
    std::printf("[%5.2fs] %.*s\n", seconds, static_cast<int>(line.size()), line.data());
    std::fflush(stdout);
  }

 private:
  std::mutex mu_;
  const weft::TimePoint start_ = weft::Clock::now();
};

// The seed's NoiseMaker: prints every 100 ms in the background until stopped.
struct NoiseMaker {
  explicit NoiseMaker(Narrator& narrator) : narrator(narrator) {}
  Narrator& narrator;
  std::atomic<int> noises{0};
  weft::Deferred<void> ticking;  // loop thread only
};

weft::Task<void> make_noise(NoiseMaker& noise) {
  for (;;) {
    co_await weft::sleep(100ms);
    noise.narrator.say("LOUD NOISES!");
    ++noise.noises;
  }
}

// Cell 1, the seed scenario: Twisted's callLater(0.1) and callLater(0.5) beside
// an awaited sleep(1); then it starts the ticker, which outlives the cell.
weft::Task<void> first_cell(Narrator& narrator, NoiseMaker& noise) {
  weft::Reactor& reactor = *weft::Reactor::current();
  reactor.call_later(100ms, [&narrator] { narrator.say("Hanging out!"); });
  reactor.call_later(500ms, [&narrator] { narrator.say("Partying hard!"); });
  narrator.say("Going to sleep...");
  co_await weft::sleep(1s);
  narrator.say("I HAVE AWAKENED!");
  noise.ticking = weft::spawn(reactor, make_noise(noise));
}

// Cell 2: a little more work, then the ticker is stopped.
weft::Task<void> second_cell(NoiseMaker& noise) {
  co_await weft::sleep(250ms);
  noise.ticking.cancel();
  noise.narrator.say("ticker stopped");
}

#if WEFT_HAVE_GLIB
// The host application for `--runner host`: a GLib main loop on a thread of its own, with weft
// as its guest (ipykernel's already-running loop, in the seed's story).
class GlibHost {
 public:
  explicit GlibHost(std::string backend) {
    std::exception_ptr error;
    thread_ = std::thread([this, backend, &error] {
      GMainContext* context = g_main_context_new();
      g_main_context_push_thread_default(context);
      std::optional<weft::GuestReactor> guest;
      try {
        guest.emplace(backend);
      } catch (...) {
        error = std::current_exception();
      }
      GSource* source = guest ? weft::glib::attach(*guest, context) : nullptr;
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
  weft::Reactor& reactor() { return *reactor_; }
  std::thread::id thread_id() const { return thread_.get_id(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = false;
  GMainLoop* loop_ = nullptr;
  weft::Reactor* reactor_ = nullptr;
  std::thread thread_;
};
#endif

int demo(const std::vector<std::string_view>& args) {
  std::string backend;
  std::string runner_name;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= args.size()) return false;
      out = std::string(args[++i]);
      return true;
    };
    // An empty name would silently mean the default: refuse it.
    if (arg == "--backend") {
      if (!value(backend) || backend.empty()) return usage_error("--backend needs a name");
    } else if (arg.starts_with("--backend=")) {
      backend = std::string(arg.substr(10));
      if (backend.empty()) return usage_error("--backend needs a name");
    } else if (arg == "--runner") {
      if (!value(runner_name) || runner_name.empty()) return usage_error("--runner needs a name");
    } else if (arg.starts_with("--runner=")) {
      runner_name = std::string(arg.substr(9));
      if (runner_name.empty()) return usage_error("--runner needs a name");
    } else if (arg == "-h" || arg == "--help") {
      std::printf("%s", kUsage);
      return 0;
    } else {
      return usage_error(
          absl::StrFormat("unknown option '%s' for demo; valid: --backend NAME, "
                          "--runner NAME, --help",
                          arg));
    }
  }
  std::unique_ptr<weft::Runner> runner;
#if WEFT_HAVE_GLIB
  std::unique_ptr<GlibHost> host;
#endif
  try {
    weft::RunnerOptions options{.backend = backend};
    const weft::RunnerInfo chosen = weft::find_runner(runner_name);  // checks $WEFT_RUNNER too
    if (chosen.needs_host) {
#if WEFT_HAVE_GLIB
      host = std::make_unique<GlibHost>(backend);
      options.host = &host->reactor();
      options.host_thread = host->thread_id();
      std::printf("the host application: a GLib main loop on its own thread, weft its guest\n");
#else
      std::fprintf(stderr,
                   "weft: the demo's host application is a GLib loop; this weft was "
                   "built without GLib\n");
      return 1;
#endif
    }
    runner = weft::make_runner(chosen.name, options);
  } catch (const weft::UnknownNameError& e) {
    print_error(e);
    return 2;
  }
  std::printf("weft demo: backend %s, runner %s\n", runner->reactor().description().c_str(),
              std::string(runner->name()).c_str());
  Narrator narrator;
  NoiseMaker noise(narrator);
  std::printf("-- cell 1\n");
  runner->run(first_cell(narrator, noise));
  std::printf("-- between cells: the main thread sleeps 0.5 s\n");
  std::fflush(stdout);
  const int before = noise.noises;
  std::this_thread::sleep_for(500ms);
  const int between = noise.noises - before;
  std::printf("-- cell 2\n");
  std::fflush(stdout);
  runner->run(second_cell(noise));
  std::printf(
      "-- the ticker printed %d time%s while the main thread slept between "
      "cells (%s)\n",
      between, between == 1 ? "" : "s",
      between > 0 ? "the loop kept running" : "the loop was paused");
  runner.reset();  // before the narrator and the ticker it may still refer to
  return 0;
}

int run_command(std::string_view command, const std::vector<std::string_view>& args) {
  try {
    if (command == "-h" || command == "--help" || command == "help") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (command == "backends" || command == "runners") {
      if (!args.empty()) return usage_error(absl::StrFormat("'%s' takes no options", command));
      return command == "backends" ? list_backends() : list_runners();
    }
    if (command == "demo") return demo(args);
    if (command == "get") return weft::cli::run_get_command(args);
  } catch (const weft::UnknownNameError& e) {
    print_error(e);
    return 2;
  } catch (const std::exception& e) {
    print_error(e);
    return 1;
  }
  return usage_error(
      absl::StrFormat("unknown command '%s'; valid: backends, runners, demo, get", command));
}

}  // namespace

int main(int argc, char** argv) {
  const ClosedStdio closed = plug_closed_stdio();
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) return usage_error("no command given; valid: backends, runners, demo");
  const std::string_view command = args.front();
  args.erase(args.begin());
  // Every command writes to standard output: with it closed, say so rather than run for
  // nothing. (Its descriptor is /dev/null now, so the writes themselves would succeed.)
  if (closed.out) {
    std::fprintf(stderr, "weft: cannot write to standard output: %s\n", std::strerror(EBADF));
    return 1;
  }
  return finish_output(run_command(command, args));
}
