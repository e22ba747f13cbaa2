// The switch that forces weft's portable fallbacks (core/detail/portable.h, $WEFT_PORTABLE=1):
// that it changes each path it claims to (the guest reactor's wake-ups, the backends' timer
// source, the net layer's socket calls), and that a fresh process started with it, on a kernel
// made to refuse the Linux-only calls (seccomp: accept4, socket() with creation flags,
// timerfd_create, ppoll), still runs a guest reactor, timers and TCP and UDP traffic on every
// backend: what macOS and the BSDs would run.
#include "weft/core/detail/portable.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "tests/core/run_in_child.h"
#include "tests/testing/backends.h"
#include "tests/testing/scoped_env.h"
#include "weft/core/errors.h"
#include "weft/core/reactor.h"
#include "weft/core/sleep.h"
#include "weft/net/net.h"
#include "weft/runners/guest_reactor.h"
#include "weft/runners/runner.h"
#include "weft/runners/runner_registry.h"

namespace weft {
namespace {

using namespace std::chrono_literals;

// What a descriptor is: "pipe:[...]", "anon_inode:[eventfd]", "socket:[...]".
std::string fd_target(int fd) {
  char buffer[256];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = readlink(link.c_str(), buffer, sizeof buffer);
  return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
}

bool is_fifo(int fd) {
  struct stat st {};
  return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

bool non_blocking_and_close_on_exec(int fd) {
  return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
}

// Puts the portable switch back to the environment's value when the test ends.
class ScopedOverride {
 public:
  explicit ScopedOverride(bool forced) { detail::override_portable_fallbacks(forced); }
  ~ScopedOverride() { detail::override_portable_fallbacks(std::nullopt); }
  ScopedOverride(const ScopedOverride&) = delete;
  ScopedOverride& operator=(const ScopedOverride&) = delete;
};

// A host loop on this thread: steps `guest` until `done`, polling its fd for at most its
// timeout. Returns false after 20 s (the test's safety net, not a timing check).
template <typename Done>
bool host_until(GuestReactor& guest, Done done) {
  const TimePoint give_up = Clock::now() + 20s;
  while (!done() && Clock::now() < give_up) {
    int timeout_ms = 1000;
    if (auto timeout = guest.timeout()) {
      timeout_ms = static_cast<int>(std::min<std::int64_t>(
          std::chrono::ceil<std::chrono::milliseconds>(*timeout).count(), timeout_ms));
    }
    pollfd fd{.fd = guest.fd(), .events = POLLIN, .revents = 0};
    poll(&fd, 1, timeout_ms);
    guest.step();
  }
  return done();
}

// ---- The switch itself ----

TEST(PortableSwitch, ParsesTheDocumentedValuesAndRefusesOthers) {
  for (const char* on : {"1", "true", "TRUE", "yes", "On"}) {
    EXPECT_EQ(detail::parse_portable_switch(on), true) << on;
  }
  for (const char* off : {"", "0", "false", "No", "off"}) {
    EXPECT_EQ(detail::parse_portable_switch(off), false) << off;
  }
  for (const char* bad : {"2", "portable", " 1", "enable"}) {
    EXPECT_EQ(detail::parse_portable_switch(bad), std::nullopt) << bad;
  }
}

TEST(PortableSwitch, AnOverrideWinsOverTheEnvironmentUntilCleared) {
  const bool from_environment = detail::force_portable_fallbacks();
  {
    ScopedOverride forced(true);
    EXPECT_TRUE(detail::force_portable_fallbacks());
    detail::override_portable_fallbacks(false);
    EXPECT_FALSE(detail::force_portable_fallbacks());
  }
  EXPECT_EQ(detail::force_portable_fallbacks(), from_environment);
}

// This process's own $WEFT_PORTABLE reached weft: a CI run with WEFT_PORTABLE=1 really runs the
// fallbacks (checked on what a guest reactor opens, not on the switch alone).
TEST(PortableSwitch, TheEnvironmentsSwitchIsTheOneInEffect) {
  const char* env = std::getenv("WEFT_PORTABLE");
  const bool expected = env != nullptr && detail::parse_portable_switch(env).value_or(false);
  EXPECT_EQ(detail::force_portable_fallbacks(), expected);
  GuestReactor guest(std::string_view(), GuestReactor::Wait::kHelperThread);
  EXPECT_EQ(is_fifo(guest.fd()), expected) << fd_target(guest.fd());
  std::printf("WEFT_PORTABLE=%s: the guest wakes the host through %s\n", env ? env : "(unset)",
              fd_target(guest.fd()).c_str());
}

// ---- Each path the switch changes, in this process (through the override) ----

class PortablePaths : public ::testing::TestWithParam<std::string> {};

TEST_P(PortablePaths, GuestReactorWakesTheHostThroughAPipeOnlyWhenForced) {
  for (const bool forced : {false, true}) {
    ScopedOverride scope(forced);
    GuestReactor guest(GetParam(), GuestReactor::Wait::kHelperThread);
    const std::string target = fd_target(guest.fd());
    if (forced) {
      EXPECT_TRUE(is_fifo(guest.fd())) << target;
      EXPECT_EQ(target.rfind("pipe:", 0), 0u) << target;
    } else {
      EXPECT_FALSE(is_fifo(guest.fd())) << target;
      EXPECT_EQ(target, "anon_inode:[eventfd]");
    }
    // Either way it works: a timer and a cross-thread call reach the host, never early.
    const TimePoint start = Clock::now();
    std::optional<TimePoint> fired;
    bool called = false;
    guest.reactor().call_later(200us, [&] { fired = Clock::now(); });
    std::thread other([&] { guest.reactor().call_from_thread([&] { called = true; }); });
    EXPECT_TRUE(host_until(guest, [&] { return fired.has_value() && called; }));
    other.join();
    ASSERT_TRUE(fired.has_value());
    EXPECT_GE(*fired - start, 200us);
  }
}

TEST_P(PortablePaths, BackendsUseTheirLibrarysOwnTimerWhenForcedUnlessATimerfdIsAskedFor) {
  testing::ScopedEnv timer("WEFT_TIMER", nullptr);
  std::string native;
  {
    ScopedOverride scope(false);
    native = make_reactor(GetParam())->description();
  }
  ScopedOverride scope(true);
  const std::string forced = make_reactor(GetParam())->description();
  EXPECT_EQ(forced.find("timerfd"), std::string::npos) << forced;
  {
    // WEFT_TIMER given explicitly wins over the switch: a backend that uses a timerfd by
    // default uses it again.
    testing::ScopedEnv explicit_timer("WEFT_TIMER", "timerfd");
    const std::string asked = make_reactor(GetParam())->description();
    EXPECT_EQ(asked.find("timerfd") != std::string::npos,
              native.find("timerfd") != std::string::npos)
        << asked << " / " << native;
  }
  std::printf("%s -> %s\n", native.c_str(), forced.c_str());
}

// Listening, accepted, connected and UDP sockets are non-blocking and close-on-exec on both
// paths (creation flags and accept4; socket()/accept() then fcntl()), and carry traffic.
TEST_P(PortablePaths, SocketsAreNonBlockingAndCloseOnExecOnBothPaths) {
  for (const bool forced : {false, true}) {
    ScopedOverride scope(forced);
    auto runner = make_runner("blocking", {.backend = GetParam()});
    runner->run([]() -> Task<void> {
      net::Listener listener = net::Listener::bind(net::Address::loopback_v4(0));
      EXPECT_TRUE(non_blocking_and_close_on_exec(listener.native_handle()));
      net::Stream client = co_await net::connect(listener.local_address());
      EXPECT_TRUE(non_blocking_and_close_on_exec(client.native_handle()));
      net::Stream server = co_await listener.accept();
      EXPECT_TRUE(non_blocking_and_close_on_exec(server.native_handle()));
      co_await client.write_all("ping");
      std::array<char, 16> buffer{};
      const std::size_t n = co_await server.read_some(buffer);
      EXPECT_EQ(std::string(buffer.data(), n), "ping");

      net::UdpSocket a = net::UdpSocket::bind(net::Address::loopback_v4(0));
      net::UdpSocket b = net::UdpSocket::bind(net::Address::loopback_v4(0));
      EXPECT_TRUE(non_blocking_and_close_on_exec(a.native_handle()));
      co_await a.send_to("datagram", b.local_address());
      const net::Datagram got = co_await b.receive_from(std::span(buffer));
      EXPECT_EQ(std::string(buffer.data(), got.size), "datagram");
    }());
  }
}

INSTANTIATE_TEST_SUITE_P(AllBackends, PortablePaths, ::testing::ValuesIn(testing::backend_names()),
                         testing::param_name);

// ---- A fresh process with WEFT_PORTABLE=1, on a kernel that refuses the Linux-only calls ----

// Makes this process (and what it execs) fail accept4, timerfd_create and socket() with
// SOCK_NONBLOCK or SOCK_CLOEXEC, and die at ppoll: the calls weft's fallbacks replace. False if
// the kernel has no seccomp filters. Async-signal-safe (runs in a forked child before exec).
bool refuse_linux_only_calls() {
#if defined(__x86_64__) && defined(__NR_poll)
  // glibc's poll() uses the poll system call here (not ppoll), so no library is hit by the rule
  // for ppoll but weft's own helper thread.
  constexpr unsigned kAudit = AUDIT_ARCH_X86_64;
  constexpr unsigned kCreationFlags = SOCK_NONBLOCK | SOCK_CLOEXEC;
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kAudit, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_accept4, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_timerfd_create, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ppoll, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[1])),  // type, low half
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, kCreationFlags, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  const sock_fprog program{.len = static_cast<unsigned short>(std::size(filter)), .filter = filter};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
#else
  return false;
#endif
}

constexpr const char* kRefusedVariable = "WEFT_TEST_LINUX_CALLS_REFUSED";

// The fresh process's work on `backend`: 0 if every check passed.
int run_portable_scenario(const std::string& backend) {
  int failed = 0;
  const auto check = [&](bool ok, const std::string& what) {
    if (!ok) {
      std::fprintf(stderr, "WEFT_PORTABLE=1 on %s: FAILED: %s\n", backend.c_str(), what.c_str());
      ++failed;
    }
  };
  check(detail::force_portable_fallbacks(), "the switch is on");
  {
    std::unique_ptr<Reactor> reactor = make_reactor(backend);
    check(reactor->description().find("timerfd") == std::string::npos, "the library's own timer");
    // The reactor's signal pipe, made with pipe() + fcntl() here.
    bool signalled = false;
    Watch watch = reactor->watch_signal(SIGUSR2, [&] { signalled = true; });
    raise(SIGUSR2);
    const TimePoint give_up = Clock::now() + 20s;
    while (!signalled && Clock::now() < give_up) reactor->run_once(/*may_block=*/true);
    check(signalled, "a signal reaches its watcher");
    watch.cancel();
    reactor->run_once(false);
  }
  {
    GuestReactor guest(backend, GuestReactor::Wait::kHelperThread);
    check(is_fifo(guest.fd()), "the guest wakes the host through a pipe: " + fd_target(guest.fd()));
    const TimePoint start = Clock::now();
    std::optional<TimePoint> fired;
    guest.reactor().call_later(200us, [&] { fired = Clock::now(); });
    check(host_until(guest, [&] { return fired.has_value(); }), "a guest's timer fires");
    check(fired && *fired - start >= 200us, "never early");
  }
  auto runner = make_runner("blocking", {.backend = backend});
  runner->run([&]() -> Task<void> {
    net::Listener listener = net::Listener::bind(net::Address::loopback_v4(0));
    net::Stream client = co_await net::connect(listener.local_address());
    net::Stream server = co_await listener.accept();
    check(non_blocking_and_close_on_exec(server.native_handle()), "accepted socket's flags");
    co_await client.write_all("over accept()");
    std::array<char, 32> buffer{};
    const std::size_t n = co_await server.read_some(buffer);
    check(std::string(buffer.data(), n) == "over accept()", "TCP bytes");
    net::UdpSocket a = net::UdpSocket::bind(net::Address::loopback_v4(0));
    net::UdpSocket b = net::UdpSocket::bind(net::Address::loopback_v4(0));
    co_await a.send_to("datagram", b.local_address());
    const net::Datagram got = co_await b.receive_from(std::span(buffer));
    check(std::string(buffer.data(), got.size) == "datagram", "UDP bytes");
    co_await sleep(1ms);
  }());
  std::printf("WEFT_PORTABLE=1 on %s, Linux-only calls %s: %d failed\n", backend.c_str(),
              std::getenv(kRefusedVariable) != nullptr ? "refused" : "allowed", failed);
  return failed == 0 ? 0 : 1;
}

// Runs the scenario when this program was re-executed for it (before main()'s own set-up).
class PortableScenario : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* request = std::getenv(testing::kFreshProcessVariable);
    if (request == nullptr) return;
    const std::string text = request;
    if (text.rfind("portable=", 0) != 0) return;
    int code = 97;
    try {
      code = run_portable_scenario(text.substr(text.find('=') + 1));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "WEFT_PORTABLE=1: unexpected exception: %s\n", e.what());
      code = 96;
    }
    std::fflush(nullptr);
    _exit(code);
  }
};

[[maybe_unused]] ::testing::Environment* const kPortableScenario =
    ::testing::AddGlobalTestEnvironment(new PortableScenario);

TEST_P(PortablePaths, AFreshProcessWithTheSwitchRunsWhereTheLinuxOnlyCallsAreRefused) {
  const testing::ChildResult result = testing::run_fresh_process("portable", GetParam(), [] {
    setenv("WEFT_PORTABLE", "1", 1);
    unsetenv("WEFT_TIMER");
    if (refuse_linux_only_calls()) setenv(kRefusedVariable, "1", 1);
  });
  EXPECT_TRUE(result.exited_with(0)) << result.describe();
}

}  // namespace
}  // namespace weft
