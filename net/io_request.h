// IoRequest: one read, write or connect handed to a stream implementation, completion-style.
//
// This is the currency of the seam between net/'s public types (Stream, and the awaiters behind
// read_some() and write_all()) and whoever moves the bytes (net/stream_impl.h). It is shaped
// after completion-based I/O (io_uring, IOCP) rather than readiness, so that a backend built on
// completions can serve it directly; weft's readiness implementation serves it by trying the
// system call first and waiting for readiness only when the call would block.
//
// Contract, for an implementation that accepts a request (start_*() returned false):
//   * on_complete(request) is called exactly once, on the loop thread, never inside the start_*()
//     call, with `transferred` and `error` (an errno value, 0 on success) set;
//   * unless cancel_*() returned true first: then it is never called;
//   * `pending` stays true from acceptance until just before on_complete (or the cancel), and
//     `next` belongs to the implementation meanwhile.
// A start_*() that returns true finished at once (transferred/error set; on_complete not called).
//
// Threading: the loop thread of the reactor the stream belongs to.
#ifndef WEFT_NET_IO_REQUEST_H_
#define WEFT_NET_IO_REQUEST_H_

#include <cstddef>
#include <span>

namespace weft::net {

struct IoRequest {
  // Read: where the bytes go. Write: the bytes to send (never written to).
  std::span<std::byte> buffer;
  // Bytes moved so far (a write completes only when all of `buffer` was taken, or on error).
  std::size_t transferred = 0;
  // errno of the failure; 0 on success.
  int error = 0;
  void (*on_complete)(IoRequest& request) = nullptr;

  // Owned by the implementation while the request is accepted and not complete.
  bool pending = false;
  IoRequest* next = nullptr;
};

}  // namespace weft::net

#endif  // WEFT_NET_IO_REQUEST_H_
