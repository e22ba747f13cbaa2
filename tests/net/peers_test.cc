// weft's network layer against programs nobody here wrote, on loopback with ephemeral ports, on
// every backend: the HTTP client example against python3's http.server and nginx (files compared
// byte for byte, several MiB and a chunked response included), the hello server example against
// curl (keep-alive, pipelining, hostile and idle clients), and UDP echo against socat. The peers
// come from cmake/install-deps.sh; a missing one skips its test with the reason.
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "examples/http/hello_server.h"
#include "examples/http/http_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/net/net_testing.h"
#include "tests/net/process.h"
#include "weft/core/cancel_scope.h"
#include "weft/core/errors.h"
#include "weft/core/sleep.h"
#include "weft/net/net.h"

namespace weft::net {
namespace {

using namespace std::chrono_literals;
using weft::testing::find_program;
using weft::testing::Process;

namespace fs = std::filesystem;

// A temporary directory of files to serve: small.txt, big.bin (5 MiB + 17 bytes), removed after.
class WebRoot {
 public:
  WebRoot() {
    std::string templ = fs::temp_directory_path() / "weft_net_www_XXXXXX";
    dir_ = mkdtemp(templ.data());
    chmod(dir_.c_str(), 0755);
    fs::create_directories(dir_ / "www");
    write("small.txt", "hello from a file\n");
    const std::vector<std::byte> big = weft::testing::pattern((5 << 20) + 17, 7);
    write("big.bin", weft::testing::as_string(big));
  }
  ~WebRoot() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ / "www" / name, std::ios::binary) << content;
    files_[name] = content;
  }
  const fs::path& dir() const { return dir_; }
  fs::path www() const { return dir_ / "www"; }
  const std::string& content(const std::string& name) { return files_[name]; }

 private:
  fs::path dir_;
  std::map<std::string, std::string> files_;
};

// A TCP port nothing listens on right now (bound and released): for peers that cannot be told
// to pick their own.
std::uint16_t free_port() {
  Listener probe = Listener::bind(Address::loopback_v4(0));
  return probe.local_address().port();
}

// Blocking: waits until something accepts connections on `port`.
bool wait_for_port(std::uint16_t port, std::chrono::milliseconds limit = 10s) {
  const auto deadline = Clock::now() + limit;
  const Address address = Address::loopback_v4(port);
  while (Clock::now() < deadline) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool ok = ::connect(fd, address.sockaddr(), address.length()) == 0;
    close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

class PeersTest : public weft::testing::NetTest {
 protected:
  http::Response get(const std::string& url) { return run(http::get(*http::Url::parse(url))); }
};

TEST_P(PeersTest, HttpClientFetchesFilesFromPythonHttpServer) {
  const std::string python = find_program({"/usr/bin/python3", "python3"});
  if (python.empty()) GTEST_SKIP() << "python3 is not installed (cmake/install-deps.sh)";
  WebRoot root;
  Process server({python, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory",
                  root.www().string()},
                 /*quiet=*/true);
  const std::optional<std::string> banner = server.read_line(10s);
  ASSERT_TRUE(banner.has_value()) << "python3 -m http.server did not start";
  const std::size_t at = banner->find(" port ");
  ASSERT_NE(at, std::string::npos) << *banner;
  const int port = std::stoi(banner->substr(at + 6));
  const std::string base = "http://127.0.0.1:" + std::to_string(port) + "/";
  for (const char* name : {"small.txt", "big.bin"}) {
    const http::Response response = get(base + name);
    EXPECT_EQ(response.status, 200) << name;
    EXPECT_TRUE(response.body == root.content(name))
        << name << ": got " << response.body.size() << " bytes";
  }
  EXPECT_EQ(get(base + "missing").status, 404);
}

TEST_P(PeersTest, HttpClientFetchesPlainAndChunkedResponsesFromNginx) {
  const std::string nginx = find_program({"/usr/sbin/nginx", "nginx"});
  if (nginx.empty()) GTEST_SKIP() << "nginx is not installed (cmake/install-deps.sh)";
  WebRoot root;
  const std::uint16_t port = free_port();
  const fs::path conf = root.dir() / "nginx.conf";
  {
    std::ofstream out(conf);
    const std::string d = root.dir().string();
    out << (geteuid() == 0 ? "user root;\n" : "") << "worker_processes 1;\ndaemon off;\n"
        << "pid " << d << "/nginx.pid;\nerror_log " << d << "/error.log;\n"
        << "events { worker_connections 256; }\n"
        << "http {\n  access_log off;\n"
        << "  client_body_temp_path " << d << "/body; proxy_temp_path " << d << "/proxy;\n"
        << "  fastcgi_temp_path " << d << "/fastcgi; uwsgi_temp_path " << d << "/uwsgi;\n"
        << "  scgi_temp_path " << d << "/scgi;\n"
        << "  server {\n    listen 127.0.0.1:" << port << ";\n    root " << root.www().string()
        << ";\n"
        // sub_filter drops Content-Length, so nginx sends the same bytes chunked.
        << "    location /chunked/ { alias " << root.www().string() << "/;\n"
        << "      sub_filter 'weft-never-matches' 'x'; sub_filter_once off; sub_filter_types *; }\n"
        << "  }\n}\n";
  }
  Process server({nginx, "-p", root.dir().string(), "-c", conf.string()}, /*quiet=*/true);
  ASSERT_TRUE(wait_for_port(port)) << "nginx did not start; see " << root.dir() / "error.log";
  const std::string base = "http://127.0.0.1:" + std::to_string(port) + "/";
  for (const char* name : {"small.txt", "big.bin"}) {
    http::Response plain = get(base + name);
    EXPECT_EQ(plain.status, 200);
    EXPECT_FALSE(plain.chunked);
    EXPECT_TRUE(plain.body == root.content(name)) << name << ": " << plain.body.size();
    http::Response chunked = get(base + "chunked/" + name);
    EXPECT_EQ(chunked.status, 200);
    EXPECT_TRUE(chunked.chunked) << "nginx did not chunk " << name;
    EXPECT_TRUE(chunked.body == root.content(name)) << name << ": " << chunked.body.size();
  }
}

// curl, run without blocking the loop: its stdout is a socket the test reads with a Stream.
Task<std::string> run_curl(std::vector<std::string> argv) {
  Process curl(argv, /*quiet=*/true);
  Stream out = Stream::adopt(*Reactor::current(), curl.take_stdout());
  std::string text;
  std::array<char, 4096> buffer{};
  while (std::size_t n = co_await out.read_some(buffer)) text.append(buffer.data(), n);
  co_return text;
}

TEST_P(PeersTest, HelloServerAnswersCurlWithKeepAlivePipeliningAndSurvivesHostileClients) {
  const std::string curl = find_program({"/usr/bin/curl", "curl"});
  if (curl.empty()) GTEST_SKIP() << "curl is not installed (cmake/install-deps.sh)";
  run(
      [](std::string curl) -> Task<void> {
        Listener listener = Listener::bind(Address::loopback_v4(0));
        Deferred<void> server = spawn(*Reactor::current(), http::serve_hello(listener));
        const std::string url =
            "http://127.0.0.1:" + std::to_string(listener.local_address().port());
        // Keep-alive: two requests, one connection (curl's num_connects is 0 for the second).
        // (Named vectors: GCC 12 cannot co_await an expression holding an initializer_list.)
        std::vector<std::string> two_requests = {
            curl,       "-sS", url + "/a",           "-w", "[%{num_connects}]\n",
            url + "/b", "-w",  "[%{num_connects}]\n"};
        std::string out = co_await run_curl(two_requests);
        EXPECT_EQ(out, "Hello, world!\n[1]\nHello, world!\n[0]\n");

        // Pipelining: three requests in one write, three responses in order.
        Stream pipelined = co_await connect(listener.local_address());
        co_await pipelined.write_all(
            "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
            "GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        std::string replies;
        std::array<char, 4096> buffer{};
        while (std::size_t n = co_await pipelined.read_some(buffer))
          replies.append(buffer.data(), n);
        std::size_t count = 0;
        for (std::size_t at = 0; (at = replies.find("HTTP/1.1 200 OK", at)) != std::string::npos;
             ++at) {
          ++count;
        }
        EXPECT_EQ(count, 3u) << replies;

        // A silent client, one sending garbage, one leaving halfway through a request.
        Stream silent = co_await connect(listener.local_address());
        Stream garbage = co_await connect(listener.local_address());
        co_await garbage.write_all("\x01\x02 not http at all\r\n\r\n");
        std::string refused;
        while (std::size_t n = co_await garbage.read_some(buffer)) refused.append(buffer.data(), n);
        EXPECT_THAT(refused, ::testing::StartsWith("HTTP/1.1 400"));
        {
          Stream half = co_await connect(listener.local_address());
          co_await half.write_all("GET /half HTTP/1.1\r\nHost: x\r\nContent-Le");
        }  // gone
        // 1,000 idle connections at once (2,000 descriptors here), all open while curl is served;
        // a backend that cannot watch that many (select: FD_SETSIZE) is told to skip this step.
        std::vector<Stream> idle;
        if (weft::testing::can_watch_fds_up_to(2100)) {
          for (int i = 0; i < 1000; ++i) idle.push_back(co_await connect(listener.local_address()));
        } else {
          std::printf(
              "[ note ] %s cannot watch fds past FD_SETSIZE: 1,000 idle connections skipped\n",
              Reactor::current()->description().c_str());
        }
        std::vector<std::string> after = {curl, "-sS", url + "/after"};
        out = co_await run_curl(after);
        EXPECT_EQ(out, "Hello, world!\n");
        idle.clear();
        server.cancel();
        try {
          co_await server;
        } catch (const Cancelled&) {
        }
      }(curl),
      60s);
}

TEST_P(PeersTest, UdpEchoesThroughSocat) {
  const std::string socat = find_program({"/usr/bin/socat", "socat"});
  if (socat.empty()) GTEST_SKIP() << "socat is not installed (cmake/install-deps.sh)";
  UdpSocket probe;
  std::uint16_t port = 0;
  {
    // A free UDP port.
    const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const Address any = Address::loopback_v4(0);
    ::bind(fd, any.sockaddr(), any.length());
    ::sockaddr_storage s{};
    socklen_t n = sizeof s;
    getsockname(fd, reinterpret_cast<::sockaddr*>(&s), &n);
    port = Address::from_sockaddr(reinterpret_cast<::sockaddr*>(&s), n).port();
    close(fd);
  }
  Process echo(
      {socat, "-T", "5", "UDP4-RECVFROM:" + std::to_string(port) + ",bind=127.0.0.1,fork", "PIPE"},
      /*quiet=*/true);
  run([](std::uint16_t port) -> Task<void> {
    UdpSocket socket = UdpSocket::bind(Address::loopback_v4(0));
    std::array<char, 64> buffer{};
    Address peer = Address::loopback_v4(port);
    // socat may not be bound yet: resend until it answers.
    for (int attempt = 0; attempt < 100; ++attempt) {
      co_await socket.send_to("ping through socat", peer);
      // (Strings, not a Datagram: GCC 12 cannot keep an Address in a co_await temporary.)
      std::optional<std::string> got =
          co_await move_on_after(100ms, [](UdpSocket& s, std::span<char> b) -> Task<std::string> {
            Datagram d = co_await s.receive_from(b);
            co_return std::string(b.data(), d.size) + "|" + d.from.to_string();
          }(socket, buffer));
      if (!got) continue;
      EXPECT_EQ(*got, "ping through socat|" + peer.to_string());
      co_return;
    }
    ADD_FAILURE() << "socat never echoed";
  }(port));
}

INSTANTIATE_TEST_SUITE_P(Backends, PeersTest, ::testing::ValuesIn(weft::testing::backend_names()),
                         weft::testing::param_name);

}  // namespace
}  // namespace weft::net
