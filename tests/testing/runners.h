// Test helpers for suites parameterized over (runner, backend), read from the
// registries.
#ifndef WEFT_TESTS_TESTING_RUNNERS_H_
#define WEFT_TESTS_TESTING_RUNNERS_H_

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "runners/runner.h"
#include "runners/runner_registry.h"
#include "tests/testing/backends.h"

namespace weft::testing {

using RunnerParam = std::tuple<std::string, std::string>;  // (runner, backend)

// Every registered runner that can make its own reactor, on every backend.
inline std::vector<RunnerParam> runner_and_backend_names() {
  std::vector<RunnerParam> params;
  for (const RunnerInfo& runner : available_runners()) {
    for (const std::string& backend : backend_names())
      params.emplace_back(runner.name, backend);
  }
  return params;
}

inline std::string runner_param_name(
    const ::testing::TestParamInfo<RunnerParam>& info) {
  std::string name = std::get<0>(info.param) + "_" + std::get<1>(info.param);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

class RunnerTest : public ::testing::TestWithParam<RunnerParam> {
 protected:
  void SetUp() override {
    runner_ = make_runner(std::get<0>(GetParam()),
                          RunnerOptions{.backend = std::get<1>(GetParam())});
  }
  void TearDown() override { runner_.reset(); }
  Runner& runner() { return *runner_; }

  std::unique_ptr<Runner> runner_;
};

}  // namespace weft::testing

#endif  // WEFT_TESTS_TESTING_RUNNERS_H_
