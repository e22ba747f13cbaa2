// detail::ReadinessStream: weft's StreamImpl on the reactor's readiness contract (IoHandle).
// See net/stream_impl.h for the contract and net/detail/socket.h for the machinery.
#ifndef WEFT_NET_DETAIL_READINESS_STREAM_H_
#define WEFT_NET_DETAIL_READINESS_STREAM_H_

#include <memory>

#include "weft/net/detail/socket.h"
#include "weft/net/stream_impl.h"

namespace weft::net::detail {

class ReadinessStream final : public StreamImpl {
 public:
  // Takes ownership of `fd` (non-blocking) and registers it with `reactor` once.
  ReadinessStream(Reactor& reactor, int fd, const Address& peer);

  Reactor& reactor() const override { return *reactor_; }
  bool start_connect(const Address& address, IoRequest& request) override;
  bool start_read(IoRequest& request) override;
  bool cancel_read(IoRequest& request) override { return socket_.cancel_read(request); }
  bool start_write(IoRequest& request) override;
  bool cancel_write(IoRequest& request) override { return socket_.cancel_write(request); }
  void shutdown_write() override;
  void close(bool abortive) override;
  bool is_open() const override { return socket_.is_open(); }
  int native_handle() const override { return socket_.fd(); }
  Address peer_address() const override;
  Address local_address() const override;

 private:
  static bool attempt_read(void* self, int fd, IoRequest& request);
  static bool attempt_write(void* self, int fd, IoRequest& request);

  Reactor* reactor_;
  mutable Address peer_;
  Socket socket_;
  bool eof_ = false;
  bool connecting_ = false;
  // The next read would most likely find nothing, so it waits for readiness before trying
  // instead of paying a read that fails with EAGAIN: the last read took less than it asked for
  // (it drained the socket: libuv's rule), or the stream has written since (in a request/response
  // exchange the answer comes later). Readiness is level-triggered, so data already there is
  // reported at the next poll: the cost of a wrong guess is one loop turn, never a lost byte.
  bool drained_ = false;
};

class ReadinessTransport final : public Transport {
 public:
  std::unique_ptr<StreamImpl> adopt_stream(Reactor& reactor, int fd, const Address& peer) override;
  std::unique_ptr<StreamImpl> open_stream(Reactor& reactor, const Address& address) override;
};

}  // namespace weft::net::detail

#endif  // WEFT_NET_DETAIL_READINESS_STREAM_H_
