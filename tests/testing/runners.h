// Test helpers for suites parameterized over (runner, backend), read from the
// registries.
#ifndef WEFT_TESTS_TESTING_RUNNERS_H_
#define WEFT_TESTS_TESTING_RUNNERS_H_

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/backends.h"
#include "tests/testing/host_loop.h"
#include "weft/runners/runner.h"
#include "weft/runners/runner_registry.h"

namespace weft::testing {

using RunnerParam = std::tuple<std::string, std::string>;  // (runner, backend)

// Every registered runner that can make its own reactor, on every backend.
inline std::vector<RunnerParam> runner_and_backend_names() {
  std::vector<RunnerParam> params;
  for (const RunnerInfo& runner : available_runners()) {
    for (const std::string& backend : backend_names()) params.emplace_back(runner.name, backend);
  }
  return params;
}

// The same on virtual time: backends named "BACKEND@virtual" (tests/testing/backends.h).
inline std::vector<RunnerParam> runner_and_virtual_backend_names() {
  std::vector<RunnerParam> params;
  for (const RunnerInfo& runner : available_runners()) {
    for (const std::string& backend : virtual_backend_names()) {
      params.emplace_back(runner.name, backend);
    }
  }
  return params;
}

inline std::string runner_param_name(const ::testing::TestParamInfo<RunnerParam>& info) {
  std::string name = std::get<0>(info.param) + "_" + std::get<1>(info.param);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

// Makes the runner named by the parameter on the backend named by it. A runner that runs
// inside a host's loop ("host") gets one: a HostLoopThread with weft as its guest.
class RunnerTest : public ::testing::TestWithParam<RunnerParam> {
 protected:
  void SetUp() override {
    const auto& [runner_name, param] = GetParam();
    const std::string backend = backend_of(param);
    const std::string clock = names_virtual_time(param) ? "virtual" : "";
    RunnerOptions options{.backend = backend, .clock = clock};
    for (const RunnerInfo& info : available_runners()) {
      if (info.name == runner_name && info.needs_host) {
        host_ = std::make_unique<HostLoopThread>(backend, GuestReactor::Wait::kAuto, clock);
        options.host = &host_->reactor();
        options.host_thread = host_->thread_id();
      }
    }
    runner_ = make_runner(runner_name, options);
  }
  void TearDown() override {
    runner_.reset();
    host_.reset();
  }
  Runner& runner() { return *runner_; }
  // True for a runner on virtual time (a "BACKEND@virtual" parameter).
  bool virtual_time() const { return names_virtual_time(std::get<1>(GetParam())); }

  std::unique_ptr<HostLoopThread> host_;
  std::unique_ptr<Runner> runner_;
};

}  // namespace weft::testing

#endif  // WEFT_TESTS_TESTING_RUNNERS_H_
