// A stand-in for `weft get` until weft_main.cc dispatches to it: the same function, as a program.
#include <string_view>
#include <vector>

#include "examples/cli/get_command.h"

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (!args.empty() && args.front() == "get") args.erase(args.begin());
  return weft::cli::run_get_command(args);
}
