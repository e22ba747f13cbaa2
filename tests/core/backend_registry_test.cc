// The backend registry: names, the default, errors, and a backend registered at run time.
#include "core/backend_registry.h"

#include <cstdlib>
#include <memory>
#include <string>

#include "core/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace weft {
namespace {

using ::testing::HasSubstr;

// Restores an environment variable at scope exit.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_.empty()) {
      unsetenv(name_);
    } else {
      setenv(name_, old_.c_str(), 1);
    }
  }

 private:
  const char* name_;
  std::string old_;
};

TEST(BackendRegistry, UnknownNameFailsListingEveryAvailableName) {
  try {
    make_reactor("no-such-backend");
    FAIL() << "no exception";
  } catch (const UnknownNameError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no-such-backend"));
    for (const BackendInfo& info : available_backends()) {
      EXPECT_THAT(e.what(), HasSubstr(info.name));
    }
  }
}

TEST(BackendRegistry, DefaultIsTheFirstByPreferenceUnlessWeftBackendSaysOtherwise) {
  ScopedEnv unset("WEFT_BACKEND", nullptr);
  ASSERT_FALSE(available_backends().empty());
  EXPECT_EQ(default_backend_name(), available_backends().front().name);
  const std::string last = available_backends().back().name;
  ScopedEnv set("WEFT_BACKEND", last.c_str());
  EXPECT_EQ(default_backend_name(), last);
  EXPECT_EQ(make_reactor()->name(), last);
}

TEST(BackendRegistry, BadWeftBackendNamesTheVariable) {
  ScopedEnv set("WEFT_BACKEND", "nonsense");
  try {
    make_reactor();
    FAIL() << "no exception";
  } catch (const UnknownNameError& e) {
    EXPECT_THAT(e.what(), HasSubstr("WEFT_BACKEND"));
  }
}

TEST(BackendRegistry, ABackendRegisteredAtRunTimeIsListedAndUsable) {
  // A new backend needs no change to the core: here, one that lends an existing backend's
  // factory under a new name, as a module loaded at run time would register its own.
  const BackendInfo lender = available_backends().front();
  register_backend(BackendInfo{.name = "lent-" + lender.name,
                               .mechanism = lender.mechanism,
                               .preference = 1000,
                               .factory = lender.factory});
  EXPECT_THAT(available_backends().back().name, "lent-" + lender.name);
  std::unique_ptr<Reactor> reactor = make_reactor("lent-" + lender.name);
  bool ran = false;
  reactor->call_soon([&] {
    ran = true;
    reactor->stop();
  });
  reactor->run();
  EXPECT_TRUE(ran);
  EXPECT_THROW(register_backend(BackendInfo{.name = "lent-" + lender.name,
                                            .mechanism = "",
                                            .preference = 0,
                                            .factory = lender.factory}),
               UsageError)
      << "names are unique";
  EXPECT_THROW(register_backend(BackendInfo{.name = "no-factory"}), UsageError);
}

TEST(BackendRegistry, LabelsNameTheMechanismUnderneath) {
  EXPECT_EQ((BackendInfo{.name = "libuv", .mechanism = "epoll"}).label(), "libuv (epoll)");
  EXPECT_EQ((BackendInfo{.name = "libevent:poll", .mechanism = "poll"}).label(), "libevent:poll");
}

}  // namespace
}  // namespace weft
