// The net layer's benchmarks, <operation>/<backend>/<weft|raw>: weft's streams (net/) beside
// each library's own stream doing the same work (libuv's uv_tcp_t with uv_read_start/uv_write,
// a libevent bufferevent, an Asio ip::tcp::socket with async_read_some/async_write).
//
//   tcp_pingpong      one byte there and back over loopback TCP; p50/p99 in the counters
//   tcp_throughput    256 MiB one way in 64 KiB writes; bytes/s
//   tcp_accept        connect + accept + close (weft); connections/s
//   tcp_pingpong_idleN  the ping-pong with N idle connections open, each with a read pending
//                       (weft); p50/p99 and heap bytes per idle connection
//
// Both ends of a connection live on the benchmark's one loop; each row first makes a connected
// pair of loopback sockets (blocking, TCP_NODELAY) and hands it to the side under test, so every
// row does the same work. The weft rows run on each backend weft was built with (their default
// mechanism); each counts its round trips or bytes and fails if the count is wrong.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_support.h"
#include "benchmark/benchmark.h"
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

// The ping-pong, with `idle` idle connections (each with a read pending on both ends) open.
void weft_pingpong(benchmark::State& state, const std::string& backend, int idle) {
  auto reactor = make_reactor(backend);
  std::vector<net::Stream> idle_streams;
  std::vector<Deferred<void>> idle_reads;
  const std::size_t heap_before = heap_in_use();
  for (int i = 0; i < idle; ++i) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      state.SkipWithError("out of descriptors (raise the limit)");
      return;
    }
    idle_streams.push_back(net::Stream::adopt(*reactor, fds[0]));
    idle_streams.push_back(net::Stream::adopt(*reactor, fds[1]));
  }
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
    while (count.value < target) reactor->run_once(true);
  }
  stop = true;
  check(state, count.value, state.iterations());
  latencies.report(state);
  if (idle > 0) {
    state.counters["bytes_per_idle"] = static_cast<double>(heap_after - heap_before) / (2.0 * idle);
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
    while (!write.called() || !read.called()) reactor->run_once(true);
    write.check();
    read.check();
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
};

void uv_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* end = static_cast<UvEnd*>(handle->data);
  *buf = uv_buf_init(end->buffer.data(), static_cast<unsigned>(end->buffer.size()));
}

void uv_send_byte(UvEnd* end) {
  uv_buf_t buf = uv_buf_init(&end->byte, 1);
  uv_write(&end->write, reinterpret_cast<uv_stream_t*>(&end->tcp), &buf, 1, nullptr);
}

void uv_pingpong(benchmark::State& state) {
  uv_loop_t loop;
  uv_loop_init(&loop);
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
                  if (n > 0) uv_send_byte(static_cast<UvEnd*>(s->data));
                });
  uv_read_start(reinterpret_cast<uv_stream_t*>(&client.tcp), uv_alloc,
                [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
                  auto* end = static_cast<UvEnd*>(s->data);
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
    while (count.value < target) uv_run(&loop, UV_RUN_ONCE);
  }
  check(state, count.value >= state.iterations() ? state.iterations() : count.value,
        state.iterations());
  latencies.report(state);
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
    while (reader.bytes < target) uv_run(&loop, UV_RUN_ONCE);
  }
  check(state, reader.bytes, state.iterations() * kTransfer);
  state.SetBytesProcessed(reader.bytes);
  uv_close(reinterpret_cast<uv_handle_t*>(&writer.tcp), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&reader.tcp), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}
#endif

// ---- libevent: bufferevent ----
#if WEFT_BENCH_LIBEVENT
struct EvEnd {
  bufferevent* bev = nullptr;
  Counter* count = nullptr;
  Latencies* latencies = nullptr;
  TimePoint start;
  std::int64_t bytes = 0;
  std::int64_t to_send = 0;
  std::vector<char> chunk = std::vector<char>(kChunk, 'w');
};

void ev_pingpong(benchmark::State& state) {
  event_base* base = event_base_new();
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
    while (count.value < target) event_base_loop(base, EVLOOP_ONCE);
  }
  latencies.report(state);
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
  event_base* base = event_base_new();
  const FdPair pair = tcp_fd_pair();
  EvEnd writer, reader;
  writer.bev = bufferevent_socket_new(base, pair.client, BEV_OPT_CLOSE_ON_FREE);
  reader.bev = bufferevent_socket_new(base, pair.server, BEV_OPT_CLOSE_ON_FREE);
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
    while (reader.bytes < target) event_base_loop(base, EVLOOP_ONCE);
  }
  check(state, reader.bytes, state.iterations() * kTransfer);
  state.SetBytesProcessed(reader.bytes);
  bufferevent_free(writer.bev);
  bufferevent_free(reader.bev);
  event_base_free(base);
}
#endif

// ---- Asio: ip::tcp::socket, async_read_some, async_write ----
#if WEFT_BENCH_ASIO
namespace asio = boost::asio;
using asio::ip::tcp;

struct AsioPing {
  tcp::socket client, server;
  char client_byte = 'x', server_byte = 0;
  Counter* count;
  Latencies* latencies;
  TimePoint start;
  AsioPing(asio::io_context& io, FdPair pair, Counter* c, Latencies* l)
      : client(io, tcp::v4(), pair.client),
        server(io, tcp::v4(), pair.server),
        count(c),
        latencies(l) {}
  void serve() {
    server.async_read_some(asio::buffer(&server_byte, 1), [this](auto ec, std::size_t) {
      if (ec) return;
      asio::async_write(server, asio::buffer(&server_byte, 1), [this](auto ec, std::size_t) {
        if (!ec) serve();
      });
    });
  }
  void send() {
    start = Clock::now();
    asio::async_write(client, asio::buffer(&client_byte, 1), [this](auto ec, std::size_t) {
      if (ec) return;
      client.async_read_some(asio::buffer(&client_byte, 1), [this](auto ec, std::size_t) {
        if (ec) return;
        latencies->add(start);
        ++count->value;
        send();
      });
    });
  }
};

void asio_pingpong(benchmark::State& state) {
  asio::io_context io(1);
  Counter count;
  Latencies latencies;
  AsioPing ping(io, tcp_fd_pair(), &count, &latencies);
  ping.serve();
  ping.send();
  for (auto _ : state) {
    const std::int64_t target = count.value + 1;
    while (count.value < target) io.run_one();
  }
  latencies.report(state);
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
    while (flow.bytes < target) io.run_one();
  }
  check(state, flow.bytes, state.iterations() * kTransfer);
  state.SetBytesProcessed(flow.bytes);
}
#endif

bool register_net_benchmarks() {
  // The backends weft was built with (their default mechanism), named at build time: the
  // registry is filled by other static objects, in no guaranteed order relative to this one.
  const std::string names = WEFT_BENCH_BACKENDS;
  std::vector<std::string> backends;
  for (std::size_t start = 0; start < names.size();) {
    const std::size_t end = names.find(',', start);
    backends.push_back(names.substr(start, end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  for (const std::string& b : backends) {
    benchmark::RegisterBenchmark(("tcp_pingpong/" + b + "/weft").c_str(), [b](benchmark::State& s) {
      weft_pingpong(s, b, 0);
    })->UseRealTime();
    benchmark::RegisterBenchmark(("tcp_throughput/" + b + "/weft").c_str(),
                                 [b](benchmark::State& s) { weft_throughput(s, b); })
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark(("tcp_accept/" + b + "/weft").c_str(), [b](benchmark::State& s) {
      weft_accept(s, b);
    })->UseRealTime();
    for (int idle : {1000, 10000}) {
      benchmark::RegisterBenchmark(
          ("tcp_pingpong_idle" + std::to_string(idle) + "/" + b + "/weft").c_str(),
          [b, idle](benchmark::State& s) { weft_pingpong(s, b, idle); })
          ->UseRealTime();
    }
  }
#if WEFT_BENCH_LIBUV
  benchmark::RegisterBenchmark("tcp_pingpong/libuv/raw", uv_pingpong)->UseRealTime();
  benchmark::RegisterBenchmark("tcp_throughput/libuv/raw", uv_throughput)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
#endif
#if WEFT_BENCH_LIBEVENT
  benchmark::RegisterBenchmark("tcp_pingpong/libevent/raw", ev_pingpong)->UseRealTime();
  benchmark::RegisterBenchmark("tcp_throughput/libevent/raw", ev_throughput)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
#endif
#if WEFT_BENCH_ASIO
  benchmark::RegisterBenchmark("tcp_pingpong/asio/raw", asio_pingpong)->UseRealTime();
  benchmark::RegisterBenchmark("tcp_throughput/asio/raw", asio_throughput)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
#endif
  return true;
}

[[maybe_unused]] const bool registered = register_net_benchmarks();

}  // namespace
}  // namespace weft::bench
