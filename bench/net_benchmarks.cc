// The net layer's benchmarks, <operation>/<backend>/<weft|raw>: weft's streams (net/) beside
// each library's own stream doing the same work (libuv's uv_tcp_t with uv_read_start/uv_write,
// a libevent bufferevent, an Asio ip::tcp::socket with async_read_some/async_write). libevent's
// ping-pong and throughput rows also show its other idiom, "raw_event": an event per socket whose
// callback makes the system call itself, without the bufferevent's buffering.
//
//   tcp_pingpong        one byte there and back over loopback TCP; p50/p99 in the counters
//   tcp_throughput      256 MiB one way in 64 KiB writes; bytes/s
//   tcp_accept          connect + accept + close, all on one loop; connections/s
//   tcp_pingpong_idleN  the ping-pong beside N idle accepted connections, each with a read
//                       pending; p50/p99 and heap bytes per idle connection. The idle clients
//                       live in a forked child, so each process holds N descriptors (the soft
//                       limit is raised to the hard one; a row that does not fit is skipped,
//                       saying so)
//   http_hello_cC       weft's HTTP hello server (examples/http, its own process) under wrk with
//                       C connections, beside nginx with one worker giving the same body, same
//                       run: requests/s and p50/p99 (bench/report.py gives each weft row's
//                       requests/s over nginx's, medians of the same run)
//
// Both ends of a connection live on the benchmark's one loop; each row first makes a connected
// pair of loopback sockets (blocking, TCP_NODELAY) and hands it to the side under test, so every
// row does the same work. The weft rows run on each backend weft was built with (their default
// mechanism); each counts its round trips or bytes and fails if the count is wrong. Each weft row
// is registered together with its raw twin (bench/pair.h), so their repetitions interleave. A
// side whose connection breaks fails its row with the reason; no loop waits for work that can
// no longer come.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "bench/pair.h"
#include "benchmark/benchmark.h"
#include "tests/net/process.h"
#include "weft/core/backend_registry.h"
#include "weft/core/deferred.h"
#include "weft/core/reactor.h"
#include "weft/core/spawn.h"
#include "weft/net/net.h"

#if WEFT_BENCH_LIBUV
#include <uv.h>
#endif
#if WEFT_BENCH_LIBEVENT
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#endif
#if WEFT_BENCH_ASIO
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#endif

namespace weft::bench {
namespace {

constexpr std::size_t kChunk = 64 * 1024;
constexpr std::int64_t kTransfer = 256LL << 20;

// A connected loopback TCP pair, made with blocking calls, TCP_NODELAY on both ends.
struct FdPair {
  int client = -1;
  int server = -1;
};
FdPair tcp_fd_pair() {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const net::Address any = net::Address::loopback_v4(0);
  ::bind(listener, any.sockaddr(), any.length());
  listen(listener, 1);
  sockaddr_storage s{};
  socklen_t n = sizeof s;
  getsockname(listener, reinterpret_cast<sockaddr*>(&s), &n);
  FdPair pair;
  pair.client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ::connect(pair.client, reinterpret_cast<sockaddr*>(&s), n);
  pair.server = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  close(listener);
  const int one = 1;
  for (int fd : {pair.client, pair.server}) {
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return pair;
}

// Round-trip times, for the percentiles.
struct Latencies {
  std::vector<std::int64_t> ns;
  void add(TimePoint start) { ns.push_back((Clock::now() - start).count()); }
  void report(benchmark::State& state) {
    if (ns.empty()) return;
    std::sort(ns.begin(), ns.end());
    state.counters["p50_us"] = static_cast<double>(ns[ns.size() / 2]) / 1000.0;
    state.counters["p99_us"] = static_cast<double>(ns[ns.size() * 99 / 100]) / 1000.0;
  }
};

// Why a task that should have kept going ended: its error, for SkipWithError.
std::string ended_early(const Deferred<void>& task) {
  if (std::exception_ptr error = task.error()) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      return std::string("a task failed: ") + e.what();
    } catch (...) {
    }
  }
  return "a task ended early";
}

// Raises the soft descriptor limit to the hard one (once); returns the soft limit.
rlim_t fd_limit() {
  static const rlim_t limit = [] {
    rlimit r{};
    getrlimit(RLIMIT_NOFILE, &r);
    if (r.rlim_cur < r.rlim_max) {
      r.rlim_cur = r.rlim_max;
      setrlimit(RLIMIT_NOFILE, &r);
      getrlimit(RLIMIT_NOFILE, &r);
    }
    return r.rlim_cur;
  }();
  return limit;
}

// `n` idle loopback TCP connections to this process. A forked child opens the client ends and
// holds them until this object is destroyed, so each process needs n descriptors, not 2n; the
// server ends are accepted here and handed to the side under test by take().
class IdleClients {
 public:
  static constexpr rlim_t kHeadroom = 200;  // the loop's, the benchmark's and the pair's fds

  explicit IdleClients(int n) {
    if (n == 0) return;
    if (fd_limit() < static_cast<rlim_t>(n) + kHeadroom) {
      error_ = "skipped: " + std::to_string(n) + " idle connections need " +
               std::to_string(n + kHeadroom) + " descriptors per process; the limit is " +
               std::to_string(fd_limit()) + " (ulimit -n)";
      return;
    }
    const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const net::Address any = net::Address::loopback_v4(0);
    ::bind(listener, any.sockaddr(), any.length());
    listen(listener, 4096);
    sockaddr_storage where{};
    socklen_t length = sizeof where;
    getsockname(listener, reinterpret_cast<sockaddr*>(&where), &length);
    int keep[2];
    if (pipe2(keep, O_CLOEXEC) != 0) {
      error_ = "pipe failed";
      close(listener);
      return;
    }
    child_ = fork();
    if (child_ == 0) {
      // Only system calls here: the child of a possibly threaded process.
      close(keep[1]);
      close(listener);
      for (int i = 0; i < n; ++i) {
        const int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&where), length) != 0) _exit(1);
      }
      char byte;
      while (read(keep[0], &byte, 1) < 0 && errno == EINTR) {
      }
      _exit(0);
    }
    close(keep[0]);
    keep_ = keep[1];
    while (static_cast<int>(fds_.size()) < n) {
      pollfd p{.fd = listener, .events = POLLIN, .revents = 0};
      if (poll(&p, 1, 10'000) <= 0) {
        error_ = "the idle clients stopped connecting after " + std::to_string(fds_.size());
        break;
      }
      const int fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        fds_.push_back(fd);
      } else if (errno != EINTR && errno != EAGAIN) {
        error_ = std::string("accept: ") + std::strerror(errno);
        break;
      }
    }
    close(listener);
  }
  ~IdleClients() {
    for (int fd : fds_) close(fd);
    if (keep_ >= 0) close(keep_);  // the child sees end of file and exits
    if (child_ > 0) waitpid(child_, nullptr, 0);
  }
  IdleClients(const IdleClients&) = delete;
  IdleClients& operator=(const IdleClients&) = delete;

  // Empty if the connections are all there.
  const std::string& error() const { return error_; }
  // The accepted ends; the caller owns (and closes) them from now on.
  std::vector<int> take() { return std::move(fds_); }

 private:
  std::vector<int> fds_;
  std::string error_;
  pid_t child_ = -1;
  int keep_ = -1;
};

// ---- weft ----

Task<void> echo(net::Stream& stream) {
  std::array<char, 64> buffer{};
  while (std::size_t n = co_await stream.read_some(buffer)) {
    co_await stream.write_all(std::string_view(buffer.data(), n));
  }
}

Task<void> ping(net::Stream& stream, Counter& count, Latencies& latencies, const bool& stop) {
  char byte = 'x';
  while (!stop) {
    const TimePoint start = Clock::now();
    co_await stream.write_all(std::string_view(&byte, 1));
    co_await stream.read_exactly(std::span(&byte, 1));
    latencies.add(start);
    ++count.value;
  }
}

// The ping-pong, beside `idle` idle connections (each accepted end a Stream with a read pending).
void weft_pingpong(benchmark::State& state, const std::string& backend, int idle) {
  IdleClients clients(idle);
  if (!clients.error().empty()) {
    state.SkipWithError(clients.error().c_str());
    return;
  }
  auto reactor = make_reactor(backend);
  std::vector<net::Stream> idle_streams;
  std::vector<Deferred<void>> idle_reads;
  idle_streams.reserve(idle);
  idle_reads.reserve(idle);
  const std::size_t heap_before = heap_in_use();
  for (int fd : clients.take()) idle_streams.push_back(net::Stream::adopt(*reactor, fd));
  for (net::Stream& s : idle_streams) {
    idle_reads.push_back(spawn(*reactor, [](net::Stream& s) -> Task<void> {
      char byte;
      (void)co_await s.read_some(std::span(&byte, 1));
    }(s)));
  }
  for (int i = 0; i < 10; ++i) reactor->run_once(false);
  const std::size_t heap_after = heap_in_use();
  const FdPair pair = tcp_fd_pair();
  net::Stream client = net::Stream::adopt(*reactor, pair.client);
  net::Stream server = net::Stream::adopt(*reactor, pair.server);
  Counter count;
  Latencies latencies;
  bool stop = false;
  Deferred<void> echoing = spawn(*reactor, echo(server));
  Deferred<void> pinging = spawn(*reactor, ping(client, count, latencies, stop));
  for (auto _ : state) {
    const std::int64_t target = count.value + 1;
    while (count.value < target && !pinging.called() && !echoing.called()) {
      reactor->run_once(true);
    }
    if (count.value < target) {
      state.SkipWithError(ended_early(pinging.called() ? pinging : echoing).c_str());
      break;
    }
  }
  stop = true;
  if (!state.error_occurred()) {
    check(state, count.value, state.iterations());
    latencies.report(state);
  }
  if (idle > 0) {
    state.counters["bytes_per_idle"] = static_cast<double>(heap_after - heap_before) / idle;
  }
  pinging.cancel();
  echoing.cancel();
  for (auto& d : idle_reads) d.cancel();
  for (int i = 0; i < 10; ++i) reactor->run_once(false);
}

void weft_throughput(benchmark::State& state, const std::string& backend) {
  auto reactor = make_reactor(backend);
  const FdPair pair = tcp_fd_pair();
  net::Stream writer = net::Stream::adopt(*reactor, pair.client);
  net::Stream reader = net::Stream::adopt(*reactor, pair.server);
  const std::vector<std::byte> chunk(kChunk, std::byte{'w'});
  std::vector<std::byte> buffer(kChunk);
  std::int64_t received = 0;
  for (auto _ : state) {
    Deferred<void> write =
        spawn(*reactor, [](net::Stream& s, const std::vector<std::byte>& c) -> Task<void> {
          for (std::int64_t sent = 0; sent < kTransfer; sent += kChunk) co_await s.write_all(c);
        }(writer, chunk));
    Deferred<void> read = spawn(
        *reactor, [](net::Stream& s, std::vector<std::byte>& b, std::int64_t& got) -> Task<void> {
          const std::int64_t target = got + kTransfer;
          while (got < target) got += static_cast<std::int64_t>(co_await s.read_some(b));
        }(reader, buffer, received));
    while (!(write.called() && read.called()) && !write.failed() && !read.failed()) {
      reactor->run_once(true);
    }
    if (write.failed() || read.failed()) {
      state.SkipWithError(ended_early(write.failed() ? write : read).c_str());
      write.cancel();
      read.cancel();
      for (int i = 0; i < 10; ++i) reactor->run_once(false);
      return;
    }
  }
  check(state, received, state.iterations() * kTransfer);
  state.SetBytesProcessed(received);
}

void weft_accept(benchmark::State& state, const std::string& backend) {
  auto reactor = make_reactor(backend);
  Counter count;
  Deferred<void> run = spawn(*reactor, [](Counter& count) -> Task<void> {
    net::Listener listener = net::Listener::bind(net::Address::loopback_v4(0));
    const net::Address where = listener.local_address();
    for (;;) {
      Deferred<net::Stream> accepted = spawn(
          *Reactor::current(),
          [](net::Listener& l) -> Task<net::Stream> { co_return co_await l.accept(); }(listener));
      net::Stream client = co_await net::connect(where);
      net::Stream server = co_await std::move(accepted);
      client.close();
      server.close();
      ++count.value;
    }
  }(count));
  for (auto _ : state) {
    const std::int64_t target = count.value + 1;
    while (count.value < target && !run.called()) reactor->run_once(true);
  }
  if (run.called()) run.check();
  check(state, count.value, state.iterations());
  state.SetItemsProcessed(count.value);
  run.cancel();
  for (int i = 0; i < 10; ++i) reactor->run_once(false);
}

// ---- libuv: uv_tcp_t, uv_read_start, uv_write ----
#if WEFT_BENCH_LIBUV
struct UvEnd {
  uv_tcp_t tcp;
  uv_write_t write;
  char byte = 'x';
  std::vector<char> buffer = std::vector<char>(kChunk);
  Counter* count = nullptr;
  Latencies* latencies = nullptr;
  TimePoint start;
  UvEnd* peer = nullptr;
  std::int64_t bytes = 0;
  std::int64_t to_send = 0;
  int error = 0;  // the first read error or end of stream: the chain has stopped
};

void uv_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* end = static_cast<UvEnd*>(handle->data);
  *buf = uv_buf_init(end->buffer.data(), static_cast<unsigned>(end->buffer.size()));
}

void uv_send_byte(UvEnd* end) {
  uv_buf_t buf = uv_buf_init(&end->byte, 1);
  uv_write(&end->write, reinterpret_cast<uv_stream_t*>(&end->tcp), &buf, 1, nullptr);
}

void uv_idle_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  static char byte;
  *buf = uv_buf_init(&byte, 1);
}

void uv_pingpong(benchmark::State& state, int idle) {
  IdleClients clients(idle);
  if (!clients.error().empty()) {
    state.SkipWithError(clients.error().c_str());
    return;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<uv_tcp_t*> idle_handles;
  idle_handles.reserve(idle);
  const std::size_t heap_before = heap_in_use();
  for (int fd : clients.take()) {
    auto* handle = new uv_tcp_t;
    uv_tcp_init(&loop, handle);
    uv_tcp_open(handle, fd);
    uv_read_start(reinterpret_cast<uv_stream_t*>(handle), uv_idle_alloc,
                  [](uv_stream_t*, ssize_t, const uv_buf_t*) {});
    idle_handles.push_back(handle);
  }
  for (int i = 0; i < 10; ++i) uv_run(&loop, UV_RUN_NOWAIT);
  const std::size_t heap_after = heap_in_use();
  const FdPair pair = tcp_fd_pair();
  UvEnd client, server;
  Counter count;
  Latencies latencies;
  for (auto [end, fd] : {std::pair{&client, pair.client}, std::pair{&server, pair.server}}) {
    uv_tcp_init(&loop, &end->tcp);
    uv_tcp_open(&end->tcp, fd);
    end->tcp.data = end;
  }
  client.count = &count;
  client.latencies = &latencies;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&server.tcp), uv_alloc,
                [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
                  auto* end = static_cast<UvEnd*>(s->data);
                  if (n < 0) {
                    end->error = static_cast<int>(n);
                    uv_read_stop(s);
                  }
                  if (n > 0) uv_send_byte(end);
                });
  uv_read_start(reinterpret_cast<uv_stream_t*>(&client.tcp), uv_alloc,
                [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
                  auto* end = static_cast<UvEnd*>(s->data);
                  if (n < 0) {
                    end->error = static_cast<int>(n);
                    uv_read_stop(s);
                  }
                  if (n <= 0) return;
                  end->latencies->add(end->start);
                  ++end->count->value;
                  end->start = Clock::now();
                  uv_send_byte(end);
                });
  client.start = Clock::now();
  uv_send_byte(&client);
  for (auto _ : state) {
    const std::int64_t target = count.value + 1;
    while (count.value < target && client.error == 0 && server.error == 0) {
      uv_run(&loop, UV_RUN_ONCE);
    }
    if (count.value < target) {
      const int error = client.error != 0 ? client.error : server.error;
      state.SkipWithError((std::string("libuv: ") + uv_strerror(error)).c_str());
      break;
    }
  }
  if (!state.error_occurred()) {
    check(state, count.value, state.iterations());
    latencies.report(state);
  }
  if (idle > 0) {
    state.counters["bytes_per_idle"] = static_cast<double>(heap_after - heap_before) / idle;
  }
  for (uv_tcp_t* handle : idle_handles) {
    uv_close(reinterpret_cast<uv_handle_t*>(handle),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&client.tcp), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&server.tcp), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

void uv_write_next(UvEnd* end);
void uv_written(uv_write_t* req, int status) {
  auto* end = static_cast<UvEnd*>(req->data);
  if (status == 0 && end->to_send > 0) uv_write_next(end);
}
void uv_write_next(UvEnd* end) {
  end->to_send -= kChunk;
  uv_buf_t buf = uv_buf_init(end->buffer.data(), static_cast<unsigned>(kChunk));
  end->write.data = end;
  uv_write(&end->write, reinterpret_cast<uv_stream_t*>(&end->tcp), &buf, 1, uv_written);
}

void uv_throughput(benchmark::State& state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  const FdPair pair = tcp_fd_pair();
  UvEnd writer, reader;
  for (auto [end, fd] : {std::pair{&writer, pair.client}, std::pair{&reader, pair.server}}) {
    uv_tcp_init(&loop, &end->tcp);
    uv_tcp_open(&end->tcp, fd);
    end->tcp.data = end;
  }
  uv_read_start(reinterpret_cast<uv_stream_t*>(&reader.tcp), uv_alloc,
                [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
                  if (n > 0) static_cast<UvEnd*>(s->data)->bytes += n;
                });
  for (auto _ : state) {
    const std::int64_t target = reader.bytes + kTransfer;
    writer.to_send = kTransfer;
    uv_write_next(&writer);
    // uv_run() returns 0 once nothing is left to run: the transfer stopped short.
    while (reader.bytes < target && uv_run(&loop, UV_RUN_ONCE) != 0) {
    }
    if (reader.bytes < target) {
      state.SkipWithError("libuv: the transfer stopped short");
      break;
    }
  }
  check(state, reader.bytes, state.iterations() * kTransfer);
  state.SetBytesProcessed(reader.bytes);
  uv_close(reinterpret_cast<uv_handle_t*>(&writer.tcp), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&reader.tcp), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

// connect + accept + close: a uv_tcp_t listener, uv_accept into a fresh handle, uv_tcp_connect
// from another; both closed; the next cycle starts when both halves are done.
struct UvAccept {
  uv_loop_t* loop;
  uv_tcp_t listener;
  sockaddr_storage where;
  Counter* count;
  int halves = 0;
  bool failed = false;
  bool stopping = false;
};
struct UvClient {
  uv_tcp_t tcp;
  uv_connect_t connect;
  UvAccept* cycle;
};
void uv_delete_tcp(uv_handle_t* handle) { delete reinterpret_cast<uv_tcp_t*>(handle); }
void uv_accept_cycle(UvAccept* a);
void uv_half_done(UvAccept* a) {
  if (--a->halves > 0) return;
  ++a->count->value;
  if (!a->stopping && !a->failed) uv_accept_cycle(a);
}
void uv_accept_cycle(UvAccept* a) {
  a->halves = 2;
  auto* client = new UvClient{.tcp = {}, .connect = {}, .cycle = a};
  uv_tcp_init(a->loop, &client->tcp);
  client->connect.data = client;
  const int r =
      uv_tcp_connect(&client->connect, &client->tcp, reinterpret_cast<const sockaddr*>(&a->where),
                     [](uv_connect_t* req, int status) {
                       auto* c = static_cast<UvClient*>(req->data);
                       if (status != 0) c->cycle->failed = true;
                       UvAccept* cycle = c->cycle;
                       uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp),
                                [](uv_handle_t* h) { delete reinterpret_cast<UvClient*>(h); });
                       uv_half_done(cycle);
                     });
  if (r != 0) a->failed = true;
}

void uv_accept_rate(benchmark::State& state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Counter count;
  UvAccept a{.loop = &loop, .listener = {}, .where = {}, .count = &count};
  uv_tcp_init(&loop, &a.listener);
  a.listener.data = &a;
  sockaddr_in any{};
  uv_ip4_addr("127.0.0.1", 0, &any);
  uv_tcp_bind(&a.listener, reinterpret_cast<const sockaddr*>(&any), 0);
  int length = sizeof a.where;
  uv_tcp_getsockname(&a.listener, reinterpret_cast<sockaddr*>(&a.where), &length);
  uv_listen(reinterpret_cast<uv_stream_t*>(&a.listener), 128, [](uv_stream_t* server, int status) {
    auto* cycle = static_cast<UvAccept*>(server->data);
    if (status != 0) {
      cycle->failed = true;
      return;
    }
    auto* accepted = new uv_tcp_t;
    uv_tcp_init(cycle->loop, accepted);
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(accepted)) != 0) cycle->failed = true;
    uv_close(reinterpret_cast<uv_handle_t*>(accepted), uv_delete_tcp);
    uv_half_done(cycle);
  });
  uv_accept_cycle(&a);
  for (auto _ : state) {
    const std::int64_t target = count.value + 1;
    while (count.value < target && !a.failed) uv_run(&loop, UV_RUN_ONCE);
  }
  if (a.failed) state.SkipWithError("a connect or accept failed");
  state.SetItemsProcessed(state.iterations());
  a.stopping = true;
  while (a.halves > 0 && !a.failed) uv_run(&loop, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(&a.listener), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}
#endif

// ---- libevent: bufferevent (raw), and plain events with the socket calls made by hand ----
#if WEFT_BENCH_LIBEVENT
// The base is used from one thread: made without locks (EVENT_BASE_FLAG_NOLOCK), as an expert
// would; weft's backend needs them for its cross-thread wake-up, the raw side does not.
event_base* ev_base() {
  event_config* config = event_config_new();
  event_config_set_flag(config, EVENT_BASE_FLAG_NOLOCK);
  event_base* base = event_base_new_with_config(config);
  event_config_free(config);
  return base;
}

struct EvEnd {
  bufferevent* bev = nullptr;
  Counter* count = nullptr;
  Latencies* latencies = nullptr;
  TimePoint start;
  std::int64_t bytes = 0;
  std::int64_t to_send = 0;
  std::vector<char> chunk = std::vector<char>(kChunk, 'w');
};

void ev_pingpong(benchmark::State& state, int idle) {
  IdleClients clients(idle);
  if (!clients.error().empty()) {
    state.SkipWithError(clients.error().c_str());
    return;
  }
  event_base* base = ev_base();
  std::vector<bufferevent*> idle_events;
  idle_events.reserve(idle);
  const std::size_t heap_before = heap_in_use();
  for (int fd : clients.take()) {
    bufferevent* bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_enable(bev, EV_READ);
    idle_events.push_back(bev);
  }
  for (int i = 0; i < 10; ++i) event_base_loop(base, EVLOOP_NONBLOCK);
  const std::size_t heap_after = heap_in_use();
  const FdPair pair = tcp_fd_pair();
  EvEnd client, server;
  Counter count;
  Latencies latencies;
  client.count = &count;
  client.latencies = &latencies;
  client.bev = bufferevent_socket_new(base, pair.client, BEV_OPT_CLOSE_ON_FREE);
  server.bev = bufferevent_socket_new(base, pair.server, BEV_OPT_CLOSE_ON_FREE);
  bufferevent_setcb(
      server.bev,
      [](bufferevent* bev, void*) {
        char byte[64];
        const size_t n = bufferevent_read(bev, byte, sizeof byte);
        bufferevent_write(bev, byte, n);
      },
      nullptr, nullptr, &server);
  bufferevent_setcb(
      client.bev,
      [](bufferevent* bev, void* arg) {
        auto* end = static_cast<EvEnd*>(arg);
        char byte[64];
        bufferevent_read(bev, byte, sizeof byte);
        end->latencies->add(end->start);
        ++end->count->value;
        end->start = Clock::now();
        bufferevent_write(bev, "x", 1);
      },
      nullptr, nullptr, &client);
  bufferevent_enable(client.bev, EV_READ | EV_WRITE);
  bufferevent_enable(server.bev, EV_READ | EV_WRITE);
  client.start = Clock::now();
  bufferevent_write(client.bev, "x", 1);
  for (auto _ : state) {
    const std::int64_t target = count.value + 1;
    // event_base_loop() returns 1 when no event is left: the ping-pong stopped.
    while (count.value < target && event_base_loop(base, EVLOOP_ONCE) == 0) {
    }
    if (count.value < target) {
      state.SkipWithError("libevent: the ping-pong stopped (a read or write failed)");
      break;
    }
  }
  if (!state.error_occurred()) {
    check(state, count.value, state.iterations());
    latencies.report(state);
  }
  if (idle > 0) {
    state.counters["bytes_per_idle"] = static_cast<double>(heap_after - heap_before) / idle;
  }
  for (bufferevent* bev : idle_events) bufferevent_free(bev);
  bufferevent_free(client.bev);
  bufferevent_free(server.bev);
  event_base_free(base);
}

void ev_fill(bufferevent* bev, void* arg) {
  auto* end = static_cast<EvEnd*>(arg);
  // Refill when the output drains below the low watermark, a few chunks at a time.
  while (end->to_send > 0 && evbuffer_get_length(bufferevent_get_output(bev)) < 4 * kChunk) {
    bufferevent_write(bev, end->chunk.data(), kChunk);
    end->to_send -= kChunk;
  }
}

void ev_throughput(benchmark::State& state) {
  event_base* base = ev_base();
  const FdPair pair = tcp_fd_pair();
  EvEnd writer, reader;
  writer.bev = bufferevent_socket_new(base, pair.client, BEV_OPT_CLOSE_ON_FREE);
  reader.bev = bufferevent_socket_new(base, pair.server, BEV_OPT_CLOSE_ON_FREE);
  // Whole 64 KiB chunks per system call, as weft's reads and writes (libevent's default: 16 KiB).
  for (bufferevent* bev : {writer.bev, reader.bev}) {
    bufferevent_set_max_single_read(bev, kChunk);
    bufferevent_set_max_single_write(bev, kChunk);
  }
  bufferevent_setwatermark(writer.bev, EV_WRITE, 2 * kChunk, 0);
  bufferevent_setcb(writer.bev, nullptr, ev_fill, nullptr, &writer);
  bufferevent_setcb(
      reader.bev,
      [](bufferevent* bev, void* arg) {
        auto* end = static_cast<EvEnd*>(arg);
        evbuffer* input = bufferevent_get_input(bev);
        const size_t n = evbuffer_get_length(input);
        end->bytes += static_cast<std::int64_t>(n);
        evbuffer_drain(input, n);
      },
      nullptr, nullptr, &reader);
  bufferevent_enable(writer.bev, EV_WRITE);
  bufferevent_enable(reader.bev, EV_READ);
  for (auto _ : state) {
    const std::int64_t target = reader.bytes + kTransfer;
    writer.to_send = kTransfer;
    ev_fill(writer.bev, &writer);
    while (reader.bytes < target && event_base_loop(base, EVLOOP_ONCE) == 0) {
    }
    if (reader.bytes < target) {
      state.SkipWithError("libevent: the transfer stopped short");
      break;
    }
  }
  check(state, reader.bytes, state.iterations() * kTransfer);
  state.SetBytesProcessed(reader.bytes);
  bufferevent_free(writer.bev);
  bufferevent_free(reader.bev);
  event_base_free(base);
}

// The other libevent idiom: an event per socket (EV_PERSIST) whose callback makes the socket call
// itself, with no bufferevent buffering in between; the write of a ping is made at once.
struct EvRawEnd {
  event* ev = nullptr;
  int fd = -1;
  Counter* count = nullptr;
  Latencies* latencies = nullptr;
  TimePoint start{};
  bool failed = false;
};

void ev_raw_pingpong(benchmark::State& state, int idle) {
  IdleClients clients(idle);
  if (!clients.error().empty()) {
    state.SkipWithError(clients.error().c_str());
    return;
  }
  event_base* base = ev_base();
  std::vector<event*> idle_events;
  idle_events.reserve(idle);
  const std::vector<int> idle_fds = clients.take();
  const std::size_t heap_before = heap_in_use();
  for (int fd : idle_fds) {
    evutil_make_socket_nonblocking(fd);
    event* ev = event_new(
        base, fd, EV_READ | EV_PERSIST, [](evutil_socket_t, short, void*) {}, nullptr);
    event_add(ev, nullptr);
    idle_events.push_back(ev);
  }
  for (int i = 0; i < 10; ++i) event_base_loop(base, EVLOOP_NONBLOCK);
  const std::size_t heap_after = heap_in_use();
  const FdPair pair = tcp_fd_pair();
  Counter count;
  Latencies latencies;
  EvRawEnd client{.fd = pair.client, .count = &count, .latencies = &latencies};
  EvRawEnd server{.fd = pair.server};
  for (EvRawEnd* end : {&client, &server}) evutil_make_socket_nonblocking(end->fd);
  server.ev = event_new(
      base, server.fd, EV_READ | EV_PERSIST,
      [](evutil_socket_t fd, short, void* arg) {
        char bytes[64];
        const ssize_t n = recv(fd, bytes, sizeof bytes, 0);
        if (n > 0 && send(fd, bytes, static_cast<size_t>(n), MSG_NOSIGNAL) == n) return;
        if (n < 0 && errno == EAGAIN) return;
        static_cast<EvRawEnd*>(arg)->failed = true;
      },
      &server);
  client.ev = event_new(
      base, client.fd, EV_READ | EV_PERSIST,
      [](evutil_socket_t fd, short, void* arg) {
        auto* end = static_cast<EvRawEnd*>(arg);
        char byte[64];
        const ssize_t n = recv(fd, byte, sizeof byte, 0);
        if (n < 0 && errno == EAGAIN) return;
        if (n <= 0) {
          end->failed = true;
          return;
        }
        end->latencies->add(end->start);
        ++end->count->value;
        end->start = Clock::now();
        if (send(fd, "x", 1, MSG_NOSIGNAL) != 1) end->failed = true;
      },
      &client);
  event_add(server.ev, nullptr);
  event_add(client.ev, nullptr);
  client.start = Clock::now();
  if (send(client.fd, "x", 1, MSG_NOSIGNAL) != 1) client.failed = true;
  for (auto _ : state) {
    const std::int64_t target = count.value + 1;
    while (count.value < target && !client.failed && !server.failed &&
           event_base_loop(base, EVLOOP_ONCE) == 0) {
    }
    if (count.value < target) {
      state.SkipWithError("libevent: the ping-pong stopped (a read or write failed)");
      break;
    }
  }
  if (!state.error_occurred()) {
    check(state, count.value, state.iterations());
    latencies.report(state);
  }
  if (idle > 0) {
    state.counters["bytes_per_idle"] = static_cast<double>(heap_after - heap_before) / idle;
  }
  for (event* ev : idle_events) event_free(ev);
  for (int fd : idle_fds) close(fd);
  event_free(client.ev);
  event_free(server.ev);
  close(pair.client);
  close(pair.server);
  event_base_free(base);
}

struct EvRawFlow {
  event* writer = nullptr;
  event* reader = nullptr;
  int write_fd = -1, read_fd = -1;
  std::vector<char> chunk = std::vector<char>(kChunk, 'w');
  std::vector<char> buffer = std::vector<char>(kChunk);
  std::int64_t to_send = 0, bytes = 0;
  std::size_t offset = 0;  // into the chunk being sent
  bool failed = false;
};

void ev_raw_throughput(benchmark::State& state) {
  event_base* base = ev_base();
  const FdPair pair = tcp_fd_pair();
  EvRawFlow flow{.write_fd = pair.client, .read_fd = pair.server};
  evutil_make_socket_nonblocking(flow.write_fd);
  evutil_make_socket_nonblocking(flow.read_fd);
  // The writer sends (the rest of) one chunk per callback, as libuv's uv_write chain does:
  // sending until the socket is full lets the sender queue megabytes ahead of a reader that
  // takes 64 KiB per turn, which shrinks the receive window (docs/net.md, "What limited
  // throughput"). It is added only while there is something to send.
  flow.writer = event_new(
      base, flow.write_fd, EV_WRITE | EV_PERSIST,
      [](evutil_socket_t fd, short, void* arg) {
        auto* f = static_cast<EvRawFlow*>(arg);
        const ssize_t n = send(fd, f->chunk.data() + f->offset, kChunk - f->offset, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno != EAGAIN) f->failed = true;
          return;
        }
        f->offset += static_cast<std::size_t>(n);
        if (f->offset == kChunk) {
          f->offset = 0;
          f->to_send -= kChunk;
        }
        if (f->to_send <= 0) event_del(f->writer);
      },
      &flow);
  // One read of up to 64 KiB per callback, as weft and libuv read (level-triggered: it comes
  // back while there is more).
  flow.reader = event_new(
      base, flow.read_fd, EV_READ | EV_PERSIST,
      [](evutil_socket_t fd, short, void* arg) {
        auto* f = static_cast<EvRawFlow*>(arg);
        const ssize_t n = recv(fd, f->buffer.data(), f->buffer.size(), 0);
        if (n > 0) {
          f->bytes += n;
        } else if (n == 0 || errno != EAGAIN) {
          f->failed = true;
        }
      },
      &flow);
  event_add(flow.reader, nullptr);
  for (auto _ : state) {
    const std::int64_t target = flow.bytes + kTransfer;
    flow.to_send = kTransfer;
    event_add(flow.writer, nullptr);
    while (flow.bytes < target && !flow.failed && event_base_loop(base, EVLOOP_ONCE) == 0) {
    }
    if (flow.bytes < target) {
      state.SkipWithError("libevent: the transfer stopped short");
      break;
    }
  }
  check(state, flow.bytes, state.iterations() * kTransfer);
  state.SetBytesProcessed(flow.bytes);
  event_free(flow.writer);
  event_free(flow.reader);
  close(pair.client);
  close(pair.server);
  event_base_free(base);
}

// connect + accept + close: an evconnlistener whose callback closes the accepted socket, and a
// bufferevent_socket_connect freed once connected.
struct EvAccept {
  event_base* base;
  sockaddr_storage where;
  socklen_t length;
  Counter* count;
  int halves = 0;
  bool failed = false;
  bool stopping = false;
};
void ev_accept_cycle(EvAccept* a);
void ev_half_done(EvAccept* a) {
  if (--a->halves > 0) return;
  ++a->count->value;
  if (!a->stopping && !a->failed) ev_accept_cycle(a);
}
void ev_accept_cycle(EvAccept* a) {
  a->halves = 2;
  bufferevent* bev = bufferevent_socket_new(a->base, -1, BEV_OPT_CLOSE_ON_FREE);
  bufferevent_setcb(
      bev, nullptr, nullptr,
      [](bufferevent* bev, short what, void* arg) {
        auto* cycle = static_cast<EvAccept*>(arg);
        if ((what & BEV_EVENT_CONNECTED) == 0) cycle->failed = true;
        bufferevent_free(bev);
        ev_half_done(cycle);
      },
      a);
  if (bufferevent_socket_connect(bev, reinterpret_cast<sockaddr*>(&a->where),
                                 static_cast<int>(a->length)) != 0) {
    a->failed = true;
  }
}

void ev_accept_rate(benchmark::State& state) {
  event_base* base = ev_base();
  Counter count;
  EvAccept a{.base = base, .where = {}, .length = sizeof(sockaddr_storage), .count = &count};
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  evconnlistener* listener = evconnlistener_new_bind(
      base,
      [](evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) {
        evutil_closesocket(fd);
        ev_half_done(static_cast<EvAccept*>(arg));
      },
      &a, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128, reinterpret_cast<sockaddr*>(&any),
      sizeof any);
  getsockname(evconnlistener_get_fd(listener), reinterpret_cast<sockaddr*>(&a.where), &a.length);
  ev_accept_cycle(&a);
  for (auto _ : state) {
    const std::int64_t target = count.value + 1;
    while (count.value < target && !a.failed) event_base_loop(base, EVLOOP_ONCE);
  }
  if (a.failed) state.SkipWithError("a connect or accept failed");
  state.SetItemsProcessed(state.iterations());
  a.stopping = true;
  while (a.halves > 0 && !a.failed) event_base_loop(base, EVLOOP_ONCE);
  evconnlistener_free(listener);
  event_base_free(base);
}
#endif

// ---- Asio: ip::tcp::socket, async_read_some, async_write ----
#if WEFT_BENCH_ASIO
namespace asio = boost::asio;
using asio::ip::tcp;

// The whole benchmark is one chain of handlers and io_context::run() drives it: each round trip
// starts from the client's read handler while state.KeepRunning() says so. When the iterations
// are done, or an operation fails, the chain closes every socket (the server's and the idle
// ones' pending reads end with operation_aborted); the context then runs out of work and run()
// returns. No polling loop, so nothing can spin on an empty context.
struct AsioPing {
  benchmark::State& state;
  tcp::socket client, server;
  std::vector<std::unique_ptr<tcp::socket>>& idle;
  char client_byte = 'x', server_byte = 0;
  Counter count;
  Latencies latencies;
  TimePoint start;
  boost::system::error_code error;
  AsioPing(benchmark::State& s, asio::io_context& io, FdPair pair,
           std::vector<std::unique_ptr<tcp::socket>>& idle_sockets)
      : state(s),
        client(io, tcp::v4(), pair.client),
        server(io, tcp::v4(), pair.server),
        idle(idle_sockets) {}
  void serve() {
    server.async_read_some(asio::buffer(&server_byte, 1), [this](auto ec, std::size_t) {
      if (ec) return finish(ec);
      asio::async_write(server, asio::buffer(&server_byte, 1), [this](auto ec, std::size_t) {
        if (ec) return finish(ec);
        serve();
      });
    });
  }
  void send() {
    if (!state.KeepRunning()) return finish({});
    start = Clock::now();
    asio::async_write(client, asio::buffer(&client_byte, 1), [this](auto ec, std::size_t) {
      if (ec) return finish(ec);
      client.async_read_some(asio::buffer(&client_byte, 1), [this](auto ec, std::size_t) {
        if (ec) return finish(ec);
        latencies.add(start);
        ++count.value;
        send();
      });
    });
  }
  // Ends the chain: closing cancels every pending operation, so run() returns.
  void finish(boost::system::error_code ec) {
    if (ec && ec != asio::error::operation_aborted && !error) error = ec;
    boost::system::error_code ignored;
    client.close(ignored);
    server.close(ignored);
    for (auto& socket : idle) socket->close(ignored);
  }
};

void asio_pingpong(benchmark::State& state, int idle) {
  IdleClients clients(idle);
  if (!clients.error().empty()) {
    state.SkipWithError(clients.error().c_str());
    return;
  }
  asio::io_context io(1);
  std::vector<std::unique_ptr<tcp::socket>> idle_sockets;
  idle_sockets.reserve(idle);
  static char idle_byte;
  const std::size_t heap_before = heap_in_use();
  for (int fd : clients.take()) {
    auto socket = std::make_unique<tcp::socket>(io, tcp::v4(), fd);
    socket->async_read_some(asio::buffer(&idle_byte, 1), [](auto, std::size_t) {});
    idle_sockets.push_back(std::move(socket));
  }
  io.poll();
  io.restart();  // with no idle socket, poll() ran out of work and stopped the context
  const std::size_t heap_after = heap_in_use();
  AsioPing ping(state, io, tcp_fd_pair(), idle_sockets);
  ping.serve();
  ping.send();
  io.run();
  if (ping.error) {
    state.SkipWithError(("asio: " + ping.error.message()).c_str());
    return;
  }
  check(state, ping.count.value, state.iterations());
  ping.latencies.report(state);
  if (idle > 0) {
    state.counters["bytes_per_idle"] = static_cast<double>(heap_after - heap_before) / idle;
  }
}

struct AsioFlow {
  tcp::socket writer, reader;
  std::vector<char> chunk = std::vector<char>(kChunk, 'w');
  std::vector<char> buffer = std::vector<char>(kChunk);
  std::int64_t to_send = 0, bytes = 0;
  AsioFlow(asio::io_context& io, FdPair pair)
      : writer(io, tcp::v4(), pair.client), reader(io, tcp::v4(), pair.server) {}
  void write() {
    if (to_send <= 0) return;
    to_send -= kChunk;
    asio::async_write(writer, asio::buffer(chunk), [this](auto ec, std::size_t) {
      if (!ec) write();
    });
  }
  void read() {
    reader.async_read_some(asio::buffer(buffer), [this](auto ec, std::size_t n) {
      if (ec) return;
      bytes += static_cast<std::int64_t>(n);
      read();
    });
  }
};

void asio_throughput(benchmark::State& state) {
  asio::io_context io(1);
  AsioFlow flow(io, tcp_fd_pair());
  flow.read();
  for (auto _ : state) {
    const std::int64_t target = flow.bytes + kTransfer;
    flow.to_send = kTransfer;
    flow.write();
    // run_one() returns 0 once the context ran out of work: the transfer stopped short.
    while (flow.bytes < target && io.run_one() != 0) {
    }
    if (flow.bytes < target) {
      state.SkipWithError("asio: the transfer stopped short");
      break;
    }
  }
  check(state, flow.bytes, state.iterations() * kTransfer);
  state.SetBytesProcessed(flow.bytes);
}

// connect + accept + close: async_accept into a socket and async_connect from another, both
// closed (and reused) once the two halves are done.
struct AsioAccept {
  tcp::acceptor acceptor;
  tcp::socket accepted, client;
  tcp::endpoint where;
  Counter* count;
  int halves = 0;
  bool failed = false;
  bool stopping = false;
  AsioAccept(asio::io_context& io, Counter* c)
      : acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)),
        accepted(io),
        client(io),
        where(acceptor.local_endpoint()),
        count(c) {}
  void cycle() {
    halves = 2;
    acceptor.async_accept(accepted, [this](boost::system::error_code ec) {
      accepted.close();
      done(ec);
    });
    client.async_connect(where, [this](boost::system::error_code ec) {
      client.close();
      done(ec);
    });
  }
  void done(boost::system::error_code ec) {
    if (ec) failed = true;
    if (--halves > 0) return;
    ++count->value;
    if (!stopping && !failed) cycle();
  }
};

void asio_accept_rate(benchmark::State& state) {
  asio::io_context io(1);
  Counter count;
  AsioAccept a(io, &count);
  a.cycle();
  for (auto _ : state) {
    const std::int64_t target = count.value + 1;
    while (count.value < target && !a.failed && io.run_one() != 0) {
    }
    if (count.value < target && !a.failed) a.failed = true;  // out of work
    if (a.failed) break;
  }
  if (a.failed) state.SkipWithError("a connect or accept failed");
  state.SetItemsProcessed(state.iterations());
  a.stopping = true;
  while (a.halves > 0 && !a.failed && io.run_one() != 0) {
  }
}
#endif

// ---- HTTP: the hello server (its own process) under wrk, beside nginx with one worker ----
#ifdef WEFT_BENCH_HELLO
// Only the HTTP rows need it: defined here, so a build without the examples has no unused
// function (-Werror).
// A free loopback TCP port (bound, read back, released).
std::uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const net::Address any = net::Address::loopback_v4(0);
  ::bind(fd, any.sockaddr(), any.length());
  sockaddr_storage s{};
  socklen_t n = sizeof s;
  getsockname(fd, reinterpret_cast<sockaddr*>(&s), &n);
  close(fd);
  return net::Address::from_sockaddr(reinterpret_cast<sockaddr*>(&s), n).port();
}

// wrk's figures: requests/s and the latency percentiles of its --latency table.
struct WrkResult {
  double requests_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  double seconds = 0;
  std::string error;
};

double wrk_duration_us(const std::string& text) {
  std::size_t end = 0;
  const double value = std::stod(text, &end);
  const std::string unit = text.substr(end);
  if (unit == "us") return value;
  if (unit == "ms") return value * 1e3;
  if (unit == "s") return value * 1e6;
  if (unit == "m") return value * 60e6;
  return value;
}

bool wait_for_port(std::uint16_t port) {
  for (int i = 0; i < 500; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const net::Address where = net::Address::loopback_v4(port);
    const bool ok = ::connect(fd, where.sockaddr(), where.length()) == 0;
    close(fd);
    if (ok) return true;
    usleep(10'000);
  }
  return false;
}

constexpr int kWrkSeconds = 3;

WrkResult run_wrk(std::uint16_t port, int connections) {
  WrkResult result;
  const std::string wrk = testing::find_program({"/usr/bin/wrk", "wrk"});
  if (wrk.empty()) {
    result.error = "wrk is not installed (cmake/install-deps.sh)";
    return result;
  }
  if (!wait_for_port(port)) {
    result.error = "the server did not start listening";
    return result;
  }
  testing::Process run(
      {wrk, "-t1", "-c" + std::to_string(connections), "-d" + std::to_string(kWrkSeconds) + "s",
       "--latency", "http://127.0.0.1:" + std::to_string(port) + "/"},
      /*quiet=*/true);
  const TimePoint start = Clock::now();
  auto [out, status] = run.finish(std::chrono::seconds(kWrkSeconds + 30));
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (status != 0) {
    result.error = "wrk failed: " + out;
    return result;
  }
  if (const std::size_t at = out.find("Requests/sec:"); at != std::string::npos) {
    result.requests_per_s = std::stod(out.substr(at + 13));
  }
  for (auto [label, field] : {std::pair{" 50% ", &result.p50_us}, {" 99% ", &result.p99_us}}) {
    const std::size_t at = out.find(label);
    if (at == std::string::npos) continue;
    std::size_t begin = out.find_first_not_of(' ', at + std::strlen(label));
    std::size_t end = out.find_first_of(" \n", begin);
    *field = wrk_duration_us(out.substr(begin, end - begin));
  }
  if (result.requests_per_s == 0) result.error = "no figures in wrk's output: " + out;
  if (out.find("Non-2xx") != std::string::npos || out.find("Socket errors") != std::string::npos) {
    result.error = "wrk saw errors: " + out;
  }
  return result;
}

void report_wrk(benchmark::State& state, const WrkResult& r) {
  if (!r.error.empty()) {
    state.SkipWithError(r.error.c_str());
    return;
  }
  state.SetIterationTime(r.seconds);
  state.counters["requests_per_s"] = r.requests_per_s;
  state.counters["p50_us"] = r.p50_us;
  state.counters["p99_us"] = r.p99_us;
}

void http_hello_nginx(benchmark::State& state, int connections) {
  const std::string nginx = testing::find_program({"/usr/sbin/nginx", "nginx"});
  if (nginx.empty()) {
    state.SkipWithError("nginx is not installed (cmake/install-deps.sh)");
    return;
  }
  namespace fs = std::filesystem;
  std::string templ = fs::temp_directory_path() / "weft_bench_nginx_XXXXXX";
  const fs::path dir = mkdtemp(templ.data());
  const std::uint16_t port = free_port();
  {
    // One worker, no access log; the body and type of weft's hello server.
    std::ofstream out(dir / "nginx.conf");
    const std::string d = dir.string();
    out << (geteuid() == 0 ? "user root;\n" : "") << "worker_processes 1;\ndaemon off;\n"
        << "pid " << d << "/nginx.pid;\nerror_log " << d << "/error.log;\n"
        << "events { worker_connections 1024; }\n"
        << "http {\n  access_log off;\n  server_tokens off;\n  keepalive_requests 100000000;\n"
        << "  client_body_temp_path " << d << "/body; proxy_temp_path " << d << "/proxy;\n"
        << "  fastcgi_temp_path " << d << "/fastcgi; uwsgi_temp_path " << d << "/uwsgi;\n"
        << "  scgi_temp_path " << d << "/scgi;\n"
        << "  server {\n    listen 127.0.0.1:" << port << ";\n"
        << "    location / { default_type text/plain; return 200 \"Hello, world!\\n\"; }\n"
        << "  }\n}\n";
  }
  WrkResult result;
  {
    testing::Process server({nginx, "-p", dir.string(), "-c", (dir / "nginx.conf").string()},
                            /*quiet=*/true);
    for (auto _ : state) result = run_wrk(port, connections);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  report_wrk(state, result);
}

void http_hello_weft(benchmark::State& state, const std::string& backend, int connections) {
  const std::uint16_t port = free_port();
  WrkResult result;
  {
    testing::Process server(
        {WEFT_BENCH_HELLO, "--port", std::to_string(port), "--backend", backend},
        /*quiet=*/true);
    for (auto _ : state) result = run_wrk(port, connections);
  }
  report_wrk(state, result);
}
#endif

// The raw sides of one library, for the rows below.
struct RawNet {
  void (*pingpong)(benchmark::State&, int) = nullptr;
  void (*throughput)(benchmark::State&) = nullptr;
  void (*accept)(benchmark::State&) = nullptr;
  // Another idiom of the library, shown beside it (libevent: plain events, "raw_event").
  const char* idiom = nullptr;
  void (*idiom_pingpong)(benchmark::State&, int) = nullptr;
  void (*idiom_throughput)(benchmark::State&) = nullptr;
};

std::optional<RawNet> raw_net(const std::string& library) {
#if WEFT_BENCH_LIBUV
  if (library == "libuv") return RawNet{uv_pingpong, uv_throughput, uv_accept_rate};
#endif
#if WEFT_BENCH_LIBEVENT
  if (library == "libevent") {
    return RawNet{ev_pingpong, ev_throughput,   ev_accept_rate,
                  "raw_event", ev_raw_pingpong, ev_raw_throughput};
  }
#endif
#if WEFT_BENCH_ASIO
  if (library == "asio") return RawNet{asio_pingpong, asio_throughput, asio_accept_rate};
#endif
  (void)library;
  return std::nullopt;
}

// weft's side of a row: a failure (a backend this build cannot make, a socket error) fails the
// row with its reason instead of ending the program.
template <typename F>
BenchFn weft_side(F f) {
  return [f](benchmark::State& state) {
    try {
      f(state);
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
    }
  };
}

// Each weft row registered together with its raw twin (bench/pair.h), so that cmake/bench.sh's
// random interleaving runs their repetitions side by side.
void register_net_benchmarks() {
  // The backends weft was built with (their default mechanism), named at build time: a plugin
  // backend is registered by its first make_reactor(), so the registry may not list it yet.
  const std::string names = WEFT_BENCH_BACKENDS;
  std::vector<std::string> backends;
  for (std::size_t start = 0; start < names.size();) {
    const std::size_t end = names.find(',', start);
    backends.push_back(names.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  const Settings real = [](benchmark::internal::Benchmark* b) { b->UseRealTime(); };
  const Settings real_ms = [](benchmark::internal::Benchmark* b) {
    b->UseRealTime()->Unit(benchmark::kMillisecond);
  };
  for (const std::string& b : backends) {
    const std::optional<RawNet> raw = raw_net(b);
    auto rows = [&](const std::string& op, BenchFn weft, BenchFn raw_fn, const Settings& settings,
                    BenchFn idiom_fn = {}) {
      std::vector<Side> sides{Side{"weft", std::move(weft)}};
      if (raw_fn) sides.push_back(Side{"raw", std::move(raw_fn)});
      if (idiom_fn) sides.push_back(Side{raw->idiom, std::move(idiom_fn)});
      register_rows(op, b, sides, settings);
    };
    auto pingpong = [](void (*f)(benchmark::State&, int), int idle) {
      return f == nullptr ? BenchFn() : BenchFn([f, idle](benchmark::State& s) { f(s, idle); });
    };
    rows("tcp_pingpong", weft_side([b](benchmark::State& s) { weft_pingpong(s, b, 0); }),
         raw ? pingpong(raw->pingpong, 0) : BenchFn(), real,
         raw ? pingpong(raw->idiom_pingpong, 0) : BenchFn());
    rows("tcp_throughput", weft_side([b](benchmark::State& s) { weft_throughput(s, b); }),
         raw ? BenchFn(raw->throughput) : BenchFn(), real_ms,
         raw && raw->idiom_throughput ? BenchFn(raw->idiom_throughput) : BenchFn());
    rows("tcp_accept", weft_side([b](benchmark::State& s) { weft_accept(s, b); }),
         raw ? BenchFn(raw->accept) : BenchFn(), real);
    for (int idle : {1000, 10000}) {
      rows("tcp_pingpong_idle" + std::to_string(idle),
           weft_side([b, idle](benchmark::State& s) { weft_pingpong(s, b, idle); }),
           raw ? pingpong(raw->pingpong, idle) : BenchFn(), real,
           raw ? pingpong(raw->idiom_pingpong, idle) : BenchFn());
    }
  }
#ifdef WEFT_BENCH_HELLO
  // One wrk run per iteration; nginx is the row's raw side (its "backend" is nginx), and
  // bench/report.py divides each weft row's requests/s by nginx's median of the same run.
  const Settings wrk = [](benchmark::internal::Benchmark* b) {
    b->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);
  };
  for (int connections : {1, 50}) {
    const std::string op = "http_hello_c" + std::to_string(connections);
    register_rows(
        op, "nginx",
        {Side{"raw", [connections](benchmark::State& s) { http_hello_nginx(s, connections); }}},
        wrk);
    for (const std::string& b : backends) {
      register_rows(op, b, {Side{"weft", weft_side([b, connections](benchmark::State& s) {
                                   http_hello_weft(s, b, connections);
                                 })}},
                    wrk);
    }
  }
#endif
}

const bool registered = at_startup(register_net_benchmarks);

}  // namespace
}  // namespace weft::bench
