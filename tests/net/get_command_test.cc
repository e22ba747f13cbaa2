// `weft get` (examples/cli/get_command.h) as a program: the body of a file served by python3's
// http.server on every backend and runner, and clear errors for a refused connection and a bad
// URL.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/net/process.h"
#include "tests/testing/backends.h"
#include "weft/net/listener.h"
#include "weft/runners/runner_registry.h"

namespace {

using weft::testing::find_program;
using weft::testing::Process;
using namespace std::chrono_literals;

const char* g_get_program = nullptr;  // argv[1]: the driver that calls run_get_command()

std::pair<std::string, int> weft_get(std::vector<std::string> args) {
  // "get" first: the program is either `weft` or the stand-in, which accepts it too.
  args.insert(args.begin(), "get");
  args.insert(args.begin(), g_get_program);
  Process get(args);
  return get.finish(30s);
}

TEST(WeftGet, PrintsTheBodyOnEveryBackendAndRunner) {
  const std::string python = find_program({"/usr/bin/python3", "python3"});
  if (python.empty()) GTEST_SKIP() << "python3 is not installed (cmake/install-deps.sh)";
  const std::string dir = ::testing::TempDir();
  Process server(
      {python, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", dir}, true);
  const auto banner = server.read_line(10s);
  ASSERT_TRUE(banner.has_value());
  const std::string port = banner->substr(banner->find(" port ") + 6);
  const std::string file = "weft_get_" + std::to_string(getpid()) + ".json";
  const std::string body = "{\"cells\": [1, 2, 3]}\n";
  FILE* f = fopen((dir + "/" + file).c_str(), "w");
  fputs(body.c_str(), f);
  fclose(f);
  const std::string url = "http://127.0.0.1:" + port.substr(0, port.find(' ')) + "/" + file;
  for (const weft::RunnerInfo& runner : weft::available_runners()) {
    for (const std::string& backend : weft::testing::backend_names()) {
      auto [out, status] = weft_get({url, "--backend", backend, "--runner", runner.name});
      EXPECT_EQ(status, 0) << runner.name << " " << backend;
      EXPECT_EQ(out, body) << runner.name << " " << backend;
    }
  }
  std::remove((dir + "/" + file).c_str());
}

TEST(WeftGet, RefusedConnectionAndBadUrlFailClearly) {
  std::uint16_t port = 0;
  {
    weft::net::Listener probe = weft::net::Listener::bind(weft::net::Address::loopback_v4(0));
    port = probe.local_address().port();
  }
  // stderr is the test's; the status tells which failure it was.
  EXPECT_EQ(weft_get({"http://127.0.0.1:" + std::to_string(port) + "/"}).second, 1);
  EXPECT_EQ(weft_get({"ftp://example.org/"}).second, 2);
  EXPECT_EQ(weft_get({"http://:80/"}).second, 2);
  EXPECT_EQ(weft_get({"http://127.0.0.1:99999/"}).second, 2);
  EXPECT_EQ(weft_get({"http://127.0.0.1/", "--runner", "no-such-runner"}).second, 2);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s GET_PROGRAM [gtest flags]\n", argv[0]);
    return 2;
  }
  g_get_program = argv[1];
  return RUN_ALL_TESTS();
}
