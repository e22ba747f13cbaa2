// StreamImpl and Transport: the seam below net/'s streams, where a backend built on completions
// (io_uring, IOCP) can supply its own stream implementation without any change to code that uses
// Stream, connect(), Listener or serve().
//
// A StreamImpl is one connected (or connecting) byte-stream socket. Its operations take
// IoRequests (net/io_request.h) and say nothing about readiness, so an implementation may submit
// them to the kernel and complete them later. weft ships one implementation,
// detail::ReadinessStream, built on IoHandle (one registration for the stream's whole life,
// try-then-wait, a fairness cap per loop turn; docs/net.md). A Transport makes StreamImpls for
// one reactor; transport_for() picks the one registered for the reactor's backend name, or the
// readiness transport. Register from the code that adds the backend (a companion library next to
// it), so that neither core/ nor the backend itself depends on net/.
//
// Rules an implementation keeps (the public API documents them to users):
//   * reads: at most one pending; a cancelled read consumes no bytes (an implementation that
//     cannot withdraw a submitted read keeps what it received for the next one); end of stream
//     (transferred 0, error 0) is sticky;
//   * writes: accepted in order and completed in order; one completes when every byte was taken
//     by the kernel; cancelling one that has not started sending must not send any of it;
//   * close(): every pending request completes with ECANCELED (never inside close()).
//
// Threading: loop thread of reactor(), except the Transport registry, which is thread-safe.
// Lifetime: a StreamImpl must not outlive its reactor's loop; destroying it closes the socket.
#ifndef WEFT_NET_STREAM_IMPL_H_
#define WEFT_NET_STREAM_IMPL_H_

#include <memory>
#include <string>

#include "weft/core/reactor.h"
#include "weft/net/address.h"
#include "weft/net/io_request.h"

namespace weft::net {

class StreamImpl {
 public:
  virtual ~StreamImpl() = default;

  virtual Reactor& reactor() const = 0;

  // Starts connecting to `address` (a StreamImpl made by Transport::open_stream()). Completes
  // like a write: error 0 once connected, else the errno (ECONNREFUSED, ETIMEDOUT, ...).
  // cancel_write() withdraws it.
  virtual bool start_connect(const Address& address, IoRequest& request) = 0;
  // See net/io_request.h for the completion contract.
  virtual bool start_read(IoRequest& request) = 0;
  virtual bool cancel_read(IoRequest& request) = 0;
  virtual bool start_write(IoRequest& request) = 0;
  virtual bool cancel_write(IoRequest& request) = 0;

  // Half-close: the peer reads end of stream; reading goes on.
  virtual void shutdown_write() = 0;
  // Closes the socket; `abortive` resets the connection (RST) instead of a graceful FIN.
  // Pending requests complete with ECANCELED from the next loop turn.
  virtual void close(bool abortive) = 0;
  virtual bool is_open() const = 0;
  // The socket (a file descriptor on POSIX), for socket options.
  virtual int native_handle() const = 0;
  virtual Address peer_address() const = 0;
  virtual Address local_address() const = 0;

  // Kept by the generic layer (net/stream.h), not by implementations: set when a write_all was
  // cancelled after part of its bytes were sent, so later writes fail instead of tearing the
  // byte stream.
  bool broken = false;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Wraps a connected, non-blocking stream socket; takes ownership of `fd`. `peer` may be empty
  // (it is then asked of the kernel when needed).
  virtual std::unique_ptr<StreamImpl> adopt_stream(Reactor& reactor, int fd,
                                                   const Address& peer) = 0;
  // A fresh, unconnected stream socket of `address`'s family, for start_connect(address, ...).
  // Throws std::system_error if the socket cannot be made (EMFILE, EAFNOSUPPORT, ...).
  virtual std::unique_ptr<StreamImpl> open_stream(Reactor& reactor, const Address& address) = 0;
};

// The transport for `reactor`: the one registered for its backend name ("libuv", or the part
// before ':' in "libevent:poll"), else weft's readiness transport.
Transport& transport_for(Reactor& reactor);
// Thread-safe. Registers (or, with nullptr, removes) the transport for a backend name.
// Reactors' streams made afterwards use it; streams already made keep theirs.
void register_transport(std::string backend_name, std::shared_ptr<Transport> transport);

}  // namespace weft::net

#endif  // WEFT_NET_STREAM_IMPL_H_
