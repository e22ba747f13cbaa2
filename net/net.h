// weft/net: TCP, UDP and Unix-domain sockets and DNS, as coroutines, on every backend.
// One umbrella include; each concept has its own header (docs/net.md).
#ifndef WEFT_NET_NET_H_
#define WEFT_NET_NET_H_

// Addresses and name resolution.
#include "net/address.h"
#include "net/resolver.h"
// Byte streams: connecting, listening, serving.
#include "net/connect.h"
#include "net/listener.h"
#include "net/serve.h"
#include "net/stream.h"
// Datagrams.
#include "net/udp_socket.h"
// The seam for backends that complete I/O themselves (io_uring, IOCP).
#include "net/stream_impl.h"

#endif  // WEFT_NET_NET_H_
