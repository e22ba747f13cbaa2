// weft_http_hello: the hello server as a program, for wrk and curl.
//   weft_http_hello [--port N] [--backend NAME]   (prints "listening on 127.0.0.1:PORT")
#include <cstdio>
#include <cstring>
#include <string>

#include "examples/http/hello_server.h"
#include "weft/core/backend_registry.h"
#include "weft/core/spawn.h"
#include "weft/net/listener.h"

int main(int argc, char** argv) {
  std::string backend;
  int port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--port") == 0) port = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--backend") == 0) backend = argv[i + 1];
  }
  auto reactor = weft::make_reactor(backend);
  weft::net::Listener listener =
      weft::net::Listener::bind(weft::net::Address::loopback_v4(static_cast<std::uint16_t>(port)));
  std::printf("listening on %s (%s)\n", listener.local_address().to_string().c_str(),
              reactor->description().c_str());
  std::fflush(stdout);
  weft::Deferred<void> done = weft::spawn(*reactor, weft::http::serve_hello(listener));
  reactor->run();
}
