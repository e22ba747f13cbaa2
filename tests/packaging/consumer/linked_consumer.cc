// A program that links the backends it asked find_package() for (weft::weft with the components
// libuv and asio): both are registered before main() and run a task; the others are not linked.
#include <chrono>
#include <cstdio>
#include <string>

#include "weft/backends/asio/asio_backend.h"
#include "weft/backends/libuv/libuv_backend.h"
#include "weft/core/backend_registry.h"
#include "weft/core/sleep.h"
#include "weft/core/task.h"
#include "weft/runners/runner.h"
#include "weft/runners/runner_registry.h"

namespace {

using namespace std::chrono_literals;

weft::Task<int> answer() {
  co_await weft::sleep(2ms);
  co_return 7;
}

}  // namespace

int main() {
  int failures = 0;
  for (const char* name : {"libuv", "asio"}) {
    auto runner = weft::make_runner("threaded", {.backend = name});
    if (runner->run(answer(), 10s) != 7) ++failures;
  }
  // Typed access to the native loop: the backends' own headers and libraries are linked.
  auto reactor = weft::make_reactor("libuv");
  if (weft::libuv::native_loop(*reactor) == nullptr) ++failures;
  for (const weft::BackendInfo& info : weft::available_backends()) {
    std::printf("linked: %s\n", info.label().c_str());
  }
  // A backend not linked comes from its plugin, which needs the shared weft core: linked
  // statically, the program must refuse it (and say why) rather than run two weft cores.
  try {
    weft::make_reactor("libevent");
    std::printf("libevent plugin: loaded\n");
  } catch (const weft::BackendPluginError& e) {
    std::printf("libevent plugin: refused: %s\n", e.what());
  }
  std::printf("%s\n", failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}
