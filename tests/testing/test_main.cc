// main() for weft's test programs: gtest's, plus a warm-up of every backend
// first.
//
// Some native libraries open process-wide descriptors once, on first use
// (libuv's and Asio's signal pipes). Opening them before any test keeps the
// per-test fd-leak check exact.
#include <csignal>

#include "gtest/gtest.h"
#include "weft/core/backend_registry.h"

namespace {

class WarmUpBackends : public ::testing::Environment {
 public:
  void SetUp() override {
    for (const weft::BackendInfo& info : weft::available_backends()) {
      auto reactor = weft::make_reactor(info.name);
      weft::Watch watch = reactor->watch_signal(SIGWINCH, [] {});
      reactor->run_once(false);
      watch.cancel();
      reactor->run_once(false);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new WarmUpBackends);
  return RUN_ALL_TESTS();
}
