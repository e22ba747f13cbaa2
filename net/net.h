// weft/net: TCP, UDP and Unix-domain sockets and DNS, as coroutines, on every backend.
// One umbrella include; each concept has its own header (docs/net.md).
#ifndef WEFT_NET_NET_H_
#define WEFT_NET_NET_H_

// Addresses and name resolution.
#include "weft/net/address.h"
#include "weft/net/resolver.h"
// Byte streams: connecting, listening, serving.
#include "weft/net/connect.h"
#include "weft/net/listener.h"
#include "weft/net/serve.h"
#include "weft/net/stream.h"
// Datagrams.
#include "weft/net/udp_socket.h"
// The seam for backends that complete I/O themselves (io_uring, IOCP).
#include "weft/net/stream_impl.h"

#endif  // WEFT_NET_NET_H_
