// weft: the command-line front door.
//
//   weft backends                  backends compiled in, one a line, default marked
//   weft runners                   runners registered, one a line, default marked
//   weft demo [--backend NAME] [--runner NAME] [--clock NAME]
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
#include "examples/cli/demo_command.h"
#include "examples/cli/get_command.h"
#include "weft/core/backend_registry.h"
#include "weft/core/deferred.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/core/sleep.h"
#include "weft/core/spawn.h"
#include "weft/core/task.h"
#include "weft/runners/runner.h"
#include "weft/runners/runner_registry.h"
#include "weft/version.h"

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
                 as the runner's background work
               the main thread then sleeps 0.5 s: with --runner threaded the ticker keeps
                 printing, with --runner blocking the loop (and the ticker) is paused
               cell 2: awaits 0.25 s, then stops the ticker
               every line is tagged with the cell whose work printed it: the ticker's lines
                 read "[cell 1] LOUD NOISES!" even while cell 2 runs
  get URL      fetches an http:// URL with weft's network layer and prints the body
               (exit 1 for a refused connection, a timeout or a non-2xx status)

options (demo, get):
  --backend NAME   the backend (default: $WEFT_BACKEND, else the first listed by `weft backends`)
  --runner NAME    the runner (default: $WEFT_RUNNER, else the first listed by `weft runners`);
                   with "host", the host application is a GLib main loop on another thread
  --clock NAME     demo: steady (default) or virtual: exact timestamps, at once (docs/time.md)
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
  // Plugins first (those of backends not linked in), so that theirs are listed and may be the
  // default; one that cannot be used is listed as unavailable, with the reason.
  const std::vector<weft::BackendPluginStatus> plugins = weft::load_backend_plugins();
  // The default is checked, not just printed: a bad $WEFT_BACKEND is an error (status 2, the
  // valid names listed), not a listing with no default marked.
  const std::string fallback = weft::find_backend().name;
  for (const weft::BackendInfo& info : weft::available_backends()) {
    bool from_plugin = false;
    for (const weft::BackendPluginStatus& plugin : plugins) {
      for (const std::string& name : plugin.backends) from_plugin |= name == info.name;
    }
    std::printf("%s%s%s\n", info.label().c_str(), info.name == fallback ? "  [default]" : "",
                from_plugin ? "  [plugin]" : "");
  }
  for (const weft::BackendPluginStatus& plugin : plugins) {
    if (!plugin.loaded) {
      std::printf("%s  unavailable: %s\n", plugin.family.c_str(), plugin.error.c_str());
    }
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

int run_command(std::string_view command, const std::vector<std::string_view>& args) {
  try {
    if (command == "-h" || command == "--help" || command == "help") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (command == "--version" || command == "version") {
      std::printf("weft %s\n", weft::version());
      return 0;
    }
    if (command == "backends" || command == "runners") {
      if (!args.empty()) return usage_error(absl::StrFormat("'%s' takes no options", command));
      return command == "backends" ? list_backends() : list_runners();
    }
    if (command == "demo") return weft::cli::run_demo_command(args);
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
