// The backend registry: names, the default, errors, and a backend registered at run time.
#include "weft/core/backend_registry.h"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/scoped_env.h"
#include "weft/core/detail/named_registry.h"
#include "weft/core/errors.h"

namespace weft {
namespace {

using ::testing::HasSubstr;

using testing::ScopedEnv;

// What a plugin's backends are registered through: a family's names land together or not at
// all, so a lookup on another thread never sees "libevent" without "libevent:poll".
struct Entry {
  std::string name;
  int preference = 0;
  std::function<int()> factory = [] { return 0; };
};

TEST(NamedRegistry, AddAllAddsEveryEntryOrNone) {
  detail::NamedRegistry<Entry> registry("thing", "WEFT_TEST_UNUSED_VARIABLE");
  registry.add(Entry{.name = "taken"});
  EXPECT_THROW(registry.add_all({Entry{.name = "a"}, Entry{.name = "taken"}}), UsageError);
  EXPECT_THROW(registry.add_all({Entry{.name = "b"}, Entry{.name = "b"}}), UsageError);
  EXPECT_THROW(registry.add_all({Entry{.name = "c"}, Entry{.name = "d", .factory = nullptr}}),
               UsageError);
  EXPECT_EQ(registry.all().size(), 1u);
  registry.add_all({Entry{.name = "f"}, Entry{.name = "f:x"}, Entry{.name = "f:y"}});
  EXPECT_EQ(registry.all().size(), 4u);
}

TEST(NamedRegistry, LooksUpOneEntryByItsExactName) {
  detail::NamedRegistry<Entry> registry("thing", "WEFT_TEST_UNUSED_VARIABLE");
  EXPECT_TRUE(registry.empty());
  EXPECT_FALSE(registry.get("f").has_value());
  EXPECT_THROW(registry.default_name(), UnknownNameError);
  registry.add_all({Entry{.name = "f:x", .preference = 2, .factory = [] { return 2; }},
                    Entry{.name = "f", .preference = 1, .factory = [] { return 1; }}});
  EXPECT_FALSE(registry.empty());
  ASSERT_TRUE(registry.get("f:x").has_value());
  EXPECT_EQ(registry.get("f:x")->factory(), 2);
  EXPECT_EQ(registry.get("f")->factory(), 1);
  EXPECT_FALSE(registry.get("f:").has_value());
  EXPECT_FALSE(registry.get("F").has_value());
  EXPECT_EQ(registry.default_name(), "f");  // the lowest preference
  EXPECT_EQ(registry.find("").factory(), 1);
  try {
    registry.find("g");
    FAIL() << "an unknown name was found";
  } catch (const UnknownNameError& e) {
    EXPECT_THAT(e.what(), HasSubstr("unknown thing 'g'; available: f, f:x"));
  }
}

TEST(NamedRegistry, AFamilyAddedTogetherIsNeverSeenInPart) {
  detail::NamedRegistry<Entry> registry("thing", "WEFT_TEST_UNUSED_VARIABLE");
  std::atomic<bool> done{false};
  std::atomic<int> partial{0};
  std::thread reader([&] {
    while (!done.load()) {
      const std::size_t n = registry.all().size();
      if (n % 3 != 0) ++partial;
    }
  });
  for (int i = 0; i < 2000; ++i) {
    const std::string family = "f" + std::to_string(i);
    registry.add_all(
        {Entry{.name = family}, Entry{.name = family + ":a"}, Entry{.name = family + ":b"}});
  }
  done = true;
  reader.join();
  EXPECT_EQ(partial.load(), 0);
  EXPECT_EQ(registry.all().size(), 6000u);
}

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

TEST(BackendRegistry, FindMechanismIsAskedOnFirstNeedOnlyAndItsAnswerKept) {
  // Registration runs before main(): a probe there could fail, or end the process, before the
  // program can handle it.
  const BackendInfo lender = available_backends().front();
  auto calls = std::make_shared<std::atomic<int>>(0);
  register_backend(BackendInfo{.name = "probed-" + lender.name,
                               .preference = 1001,
                               .factory = lender.factory,
                               .find_mechanism = [calls] {
                                 ++*calls;
                                 return std::string("found");
                               }});
  EXPECT_EQ(calls->load(), 0) << "asked at registration";
  std::unique_ptr<Reactor> reactor = make_reactor("probed-" + lender.name);
  EXPECT_EQ(calls->load(), 0) << "asked to make a reactor";
  EXPECT_EQ(find_backend("probed-" + lender.name).mechanism, "found");
  for (const BackendInfo& info : available_backends()) {
    if (info.name == "probed-" + lender.name) {
      EXPECT_EQ(info.label(), info.name + " (found)");
    }
  }
  EXPECT_EQ(calls->load(), 1) << "asked again once answered";
}

TEST(BackendRegistry, AFailingFindMechanismLeavesTheEntryListedAndIsAskedAgain) {
  const BackendInfo lender = available_backends().front();
  auto calls = std::make_shared<std::atomic<int>>(0);
  register_backend(BackendInfo{.name = "unprobed-" + lender.name,
                               .preference = 1002,
                               .factory = lender.factory,
                               .find_mechanism = [calls]() -> std::string {
                                 if (++*calls == 1) {
                                   throw std::system_error(EMFILE, std::generic_category());
                                 }
                                 return "late";
                               }});
  EXPECT_EQ(find_backend("unprobed-" + lender.name).mechanism, "");
  EXPECT_EQ(find_backend("unprobed-" + lender.name).mechanism, "late");
  EXPECT_EQ(calls->load(), 2);
}

TEST(BackendRegistry, ConcurrentFirstLookupsAskFindMechanismOnce) {
  const BackendInfo lender = available_backends().front();
  auto calls = std::make_shared<std::atomic<int>>(0);
  register_backend(BackendInfo{.name = "raced-" + lender.name,
                               .preference = 1003,
                               .factory = lender.factory,
                               .find_mechanism = [calls] {
                                 ++*calls;
                                 return std::string("raced");
                               }});
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 50; ++j) EXPECT_FALSE(available_backends().empty());
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(calls->load(), 1);
}

TEST(BackendRegistry, EveryRegisteredBackendListsItsMechanism) {
  for (const BackendInfo& info : available_backends()) {
    if (info.name.rfind("unprobed-", 0) == 0) continue;  // fails on purpose above
    EXPECT_FALSE(info.mechanism.empty()) << info.name;
  }
}

TEST(BackendRegistry, LabelsNameTheMechanismUnderneath) {
  EXPECT_EQ((BackendInfo{.name = "libuv", .mechanism = "epoll"}).label(), "libuv (epoll)");
  EXPECT_EQ((BackendInfo{.name = "libevent:poll", .mechanism = "poll"}).label(), "libevent:poll");
}

}  // namespace
}  // namespace weft
