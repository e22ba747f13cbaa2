// The plugin loader, from a program that links weft's core and runners only: every backend
// comes from its plugin in the build tree (lib/weft-0.2/plugins, found beside libweft_core).
// Lookups from many threads at once load each plugin once (run under TSan in the tsan preset).
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weft/core/backend_registry.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/core/sleep.h"
#include "weft/core/task.h"
#include "weft/runners/runner.h"
#include "weft/runners/runner_registry.h"
#include "weft/version.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

int count_named(const std::string& name) {
  int count = 0;
  for (const BackendInfo& info : available_backends()) count += info.name == name;
  return count;
}

TEST(PluginLoader, NothingIsRegisteredBeforeItIsAskedFor) {
  // This program links no backend; the tests below load them.
  EXPECT_EQ(count_named("libuv") + count_named("libevent") + count_named("asio"), 0);
}

TEST(PluginLoader, ConcurrentLookupsLoadEachPluginOnce) {
  // Lookups only, on many threads at once: the loader's own locking is what is under test.
  // (Loops of different native libraries made and destroyed on many threads at once are the
  // backends' business: tests/backends/.)
  const std::vector<std::string> names = {"libuv", "libevent:poll", "asio", "libevent"};
  std::atomic<int> found{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int round = 0; round < 3; ++round) {
        const std::string& name = names[(i + round) % names.size()];
        if (find_backend(name).name == name) ++found;
        EXPECT_TRUE(load_backend_plugin(name));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(found.load(), 24);
  for (const std::string& name : names) {
    EXPECT_EQ(count_named(name), 1) << name;
    auto reactor = make_reactor(name);
    reactor->run_once(false);
  }
}

Task<int> answer() {
  co_await sleep(1ms);
  co_return 5;
}

TEST(PluginLoader, RunnersRunOnPluginBackendsByName) {
  for (const char* name : {"libuv", "libevent", "asio"}) {
    auto runner = make_runner("threaded", {.backend = name});
    EXPECT_EQ(runner->run(answer(), 10s), 5) << name;
  }
}

TEST(PluginLoader, ListsLoadedPluginsWithTheirBackends) {
  load_backend_plugin("libuv");
  bool listed = false;
  for (const BackendPluginStatus& status : load_backend_plugins()) {
    if (status.family != "libuv") continue;
    listed = true;
    EXPECT_TRUE(status.loaded) << status.error;
    EXPECT_THAT(status.backends, ::testing::ElementsAre("libuv"));
    EXPECT_THAT(status.path, HasSubstr("weft-0.2/plugins/weft-backend-libuv.so"));
  }
  EXPECT_TRUE(listed);
}

TEST(PluginLoader, UnknownNameSaysWhereItLooked) {
  try {
    make_reactor("nosuchbackend");
    FAIL() << "made a reactor on an unknown backend";
  } catch (const UnknownNameError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no plugin weft-backend-nosuchbackend.so in"));
    EXPECT_THAT(e.what(), HasSubstr("weft-0.2/plugins"));
  }
  EXPECT_THROW(make_reactor("../etc"), UnknownNameError);  // never a path
}

TEST(PluginLoader, UnknownVariantOfALoadedFamilyIsAnUnknownName) {
  make_reactor("libevent");
  EXPECT_THROW(make_reactor("libevent:nosuchmethod"), UnknownNameError);
}

TEST(PluginLoader, VersionIsTheHeaders) { EXPECT_STREQ(version(), WEFT_VERSION_STRING); }

}  // namespace
}  // namespace weft
