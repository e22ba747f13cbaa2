// A program linked to weft's core and runners only (no backend): it runs a task on each backend
// named on its command line, chosen by name at run time, so each comes from its plugin. It
// checks, in /proc/self/maps, that a backend's native library is mapped only once that backend
// is asked for: libuv, libevent and weft's Asio backend (the Boost code) stay out of a program
// that does not use them.
//
//   plugins_consumer NAME...            run on each; exit 0 if all ran and the checks held
//   plugins_consumer --expect-error NAME TEXT
//                                       make_reactor(NAME) must fail with a message holding TEXT
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "weft/core/backend_registry.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/core/sleep.h"
#include "weft/core/task.h"
#include "weft/runners/runner.h"
#include "weft/runners/runner_registry.h"
#include "weft/version.h"

namespace {

using namespace std::chrono_literals;

// The native library each backend family brings, as it appears in /proc/self/maps.
const std::map<std::string, std::string> kNativeLibrary = {
    {"libuv", "/libuv.so"},
    {"libevent", "/libevent"},
    {"asio", "/libweft_asio.so"},
};

bool mapped(const std::string& library) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    if (line.find(library) != std::string::npos) return true;
  }
  return false;
}

weft::Task<int> answer() {
  co_await weft::sleep(2ms);
  co_return 42;
}

int failures = 0;

void fail(const std::string& what) {
  std::fprintf(stderr, "plugins_consumer: FAIL: %s\n", what.c_str());
  ++failures;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (std::string(weft::version()) != WEFT_VERSION_STRING) {
    fail(std::string("weft::version() is ") + weft::version() + ", the headers say " +
         WEFT_VERSION_STRING);
  }
  if (args.size() == 3 && args[0] == "--expect-error") {
    try {
      weft::make_reactor(args[1]);
      fail("make_reactor(" + args[1] + ") succeeded");
    } catch (const weft::BackendPluginError& e) {
      std::printf("refused as expected: %s\n", e.what());
      if (std::string(e.what()).find(args[2]) == std::string::npos) {
        fail(std::string("message lacks '") + args[2] + "': " + e.what());
      }
    }
    return failures == 0 ? 0 : 1;
  }
  std::vector<std::string> asked;
  for (const std::string& name : args) {
    const std::string family = name.substr(0, name.find(':'));
    // Nothing asked for yet may be mapped.
    for (const auto& [other, library] : kNativeLibrary) {
      bool was_asked = false;
      for (const std::string& done : asked) was_asked |= done == other;
      if (!was_asked && mapped(library)) {
        fail(library + " is mapped before backend '" + other + "' was asked for");
      }
    }
    try {
      auto runner = weft::make_runner("blocking", {.backend = name});
      const int value = runner->run(answer(), 10s);
      if (value != 42) fail("wrong answer on " + name);
      std::printf("ran on %s: %s\n", name.c_str(), weft::find_backend(name).label().c_str());
    } catch (const std::exception& e) {
      fail(name + ": " + e.what());
    }
    asked.push_back(family);
    if (auto it = kNativeLibrary.find(family); it != kNativeLibrary.end() && !mapped(it->second)) {
      fail(it->second + " is not mapped after running on " + name);
    }
  }
  return failures == 0 ? 0 : 1;
}
