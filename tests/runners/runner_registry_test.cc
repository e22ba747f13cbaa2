// The runner registry and the current runner (`%autoawait NAME`).
#include "weft/runners/runner_registry.h"

#include <cstdlib>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "weft/core/backend_registry.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/runners/blocking_runner.h"

namespace weft {
namespace {

using ::testing::HasSubstr;

Task<std::string> backend_name() { co_return Reactor::current()->name(); }

TEST(RunnerRegistry, BuiltInRunnersAreRegisteredWithBlockingTheDefault) {
  std::vector<std::string> names;
  for (const RunnerInfo& info : available_runners()) names.push_back(info.name);
  EXPECT_THAT(names, ::testing::IsSupersetOf({"blocking", "threaded", "host"}));
  unsetenv("WEFT_RUNNER");
  EXPECT_EQ(default_runner_name(), "blocking");
}

TEST(RunnerRegistry, UnknownNameFailsListingEveryRegisteredRunner) {
  try {
    make_runner("trio");
    FAIL() << "no exception";
  } catch (const UnknownNameError& e) {
    EXPECT_THAT(e.what(), HasSubstr("trio"));
    for (const RunnerInfo& info : available_runners()) EXPECT_THAT(e.what(), HasSubstr(info.name));
  }
}

TEST(RunnerRegistry, FindRunnerChecksTheNameFromWeftRunner) {
  EXPECT_EQ(find_runner("threaded").name, "threaded");
  setenv("WEFT_RUNNER", "no-such-runner", 1);
  try {
    find_runner();
    ADD_FAILURE() << "no exception";
  } catch (const UnknownNameError& e) {
    EXPECT_THAT(e.what(), HasSubstr("WEFT_RUNNER"));
    EXPECT_THAT(e.what(), HasSubstr("no-such-runner"));
    for (const RunnerInfo& info : available_runners()) EXPECT_THAT(e.what(), HasSubstr(info.name));
  }
  unsetenv("WEFT_RUNNER");
  EXPECT_EQ(find_runner().name, default_runner_name());
}

TEST(RunnerRegistry, HostRunnerWithoutAHostIsAClearError) {
  try {
    make_runner("host");
    FAIL() << "no exception";
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("RunnerOptions::host"));
  }
}

TEST(RunnerRegistry, UsersRegisterTheirOwnRunner) {
  int made = 0;
  register_runner(RunnerInfo{
      .name = "counted",
      .summary = "a blocking runner that counts how often it is made",
      .preference = 500,
      .factory = [&made](const RunnerOptions& options) -> std::unique_ptr<Runner> {
        ++made;
        return std::make_unique<BlockingRunner>(make_reactor(options.backend));
      },
  });
  std::unique_ptr<Runner> runner = make_runner("counted");
  EXPECT_EQ(made, 1);
  EXPECT_EQ(runner->run(backend_name()), default_backend_name());
  EXPECT_THROW(register_runner(RunnerInfo{
                   .name = "counted",
                   .factory = [](const RunnerOptions&) { return std::unique_ptr<Runner>(); }}),
               UsageError);
}

TEST(RunnerRegistry, CurrentRunnerIsChosenByNameAndUsedByWeftRun) {
  const std::string backend = available_backends().back().name;
  set_current_runner("threaded", RunnerOptions{.backend = backend});
  EXPECT_EQ(current_runner().name(), "threaded");
  EXPECT_EQ(weft::run(backend_name()), backend) << "the backend is chosen by name too";
  set_current_runner("blocking");
  EXPECT_EQ(current_runner().name(), "blocking");
  EXPECT_EQ(weft::run(backend_name()), default_backend_name());
  EXPECT_THROW(set_current_runner("nonsense"), UnknownNameError);
  EXPECT_EQ(current_runner().name(), "blocking") << "a bad name leaves the current runner";
}

}  // namespace
}  // namespace weft
