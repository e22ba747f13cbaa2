// `weft get URL [--backend NAME] [--runner NAME]`: fetches an http:// URL with weft's network
// layer (examples/http/http_client.h) and writes the body to standard output.
//
// Exit status: 0 for a 2xx response, 1 for any failure (a refused connection, a timeout, an
// unknown host, a non-2xx status: one line on stderr saying which), 2 for a bad URL, option or
// name (with the valid ones listed). Names fall back to $WEFT_BACKEND / $WEFT_RUNNER, then to
// the defaults; with `--runner host` the host application is a small poll() loop on its own
// thread, with weft as its guest.
//
// Threading: call from main(); it makes and destroys its own runner.
#ifndef WEFT_EXAMPLES_CLI_GET_COMMAND_H_
#define WEFT_EXAMPLES_CLI_GET_COMMAND_H_

#include <string_view>
#include <vector>

namespace weft::cli {

// `args` are the words after "get".
int run_get_command(const std::vector<std::string_view>& args);

}  // namespace weft::cli

#endif  // WEFT_EXAMPLES_CLI_GET_COMMAND_H_
