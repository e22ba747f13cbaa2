// Internal: the system calls that make sockets, written once for every POSIX platform.
//
// Linux (and the BSDs) make a socket non-blocking and close-on-exec in the call that creates
// it (SOCK_NONBLOCK | SOCK_CLOEXEC, accept4), so that another thread's fork+exec never
// inherits it. macOS has neither: there, and on Linux when the portable fallbacks are forced
// (core/detail/portable.h, $WEFT_PORTABLE=1), socket() or accept() is followed by fcntl().
//
// SIGPIPE: a write to a connection the peer closed raises SIGPIPE, which kills a process that
// does not handle it. Where the platform has SO_NOSIGPIPE (macOS, the BSDs) it is set on every
// socket made here; where send() takes MSG_NOSIGNAL (Linux, the BSDs, recent macOS), every send
// passes kSendFlags. Linux has no SO_NOSIGPIPE, so MSG_NOSIGNAL stays on Linux even with the
// fallbacks forced.
//
// Threading: any thread. Errors: -1 with errno, like the calls they wrap; nothing is left open.
#ifndef WEFT_NET_DETAIL_SOCKET_CALLS_H_
#define WEFT_NET_DETAIL_SOCKET_CALLS_H_

#include <sys/socket.h>

namespace weft::net::detail {

#if defined(MSG_NOSIGNAL)
inline constexpr int kSendFlags = MSG_NOSIGNAL;
#else
inline constexpr int kSendFlags = 0;  // SO_NOSIGPIPE, set by open_socket and accept_socket
#endif

// socket(domain, type, 0), non-blocking, close-on-exec, without SIGPIPE.
int open_socket(int domain, int type);

// accept() on a listening socket; the connection is non-blocking, close-on-exec, without
// SIGPIPE. `peer`/`length` as for accept().
int accept_socket(int listener, ::sockaddr* peer, ::socklen_t* length);

}  // namespace weft::net::detail

#endif  // WEFT_NET_DETAIL_SOCKET_CALLS_H_
