// The command line of a `weft` command: named options with a value (`--NAME VALUE` or
// `--NAME=VALUE`), -h/--help, and positional words. One parser for every command, so that
// they all take values the same way and refuse the same mistakes: an unknown option (the
// valid ones listed), a flag without its value, and an empty value (which would otherwise
// silently mean the default).
//
// Threading: none; call from main().
#ifndef WEFT_EXAMPLES_CLI_OPTIONS_H_
#define WEFT_EXAMPLES_CLI_OPTIONS_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace weft::cli {

struct ValueOption {
  std::string_view flag;  // "--backend"
  std::string_view what;  // the value's name: "--backend needs a name", "valid: --backend NAME"
  std::string* value;     // where the value goes
};

struct CommandLine {
  std::string_view command;  // "demo": named in the messages
  const char* usage;         // printed by --help, and after every error
  std::vector<ValueOption> options;
  // Where positional words go, at most `max_positional` of them (`positional_error` beyond).
  std::vector<std::string>* positional = nullptr;
  std::size_t max_positional = 0;
  std::string_view positional_error = {};
};

// Parses `args` (the words after the command's name). Returns the exit status if the command
// ends here (0 after printing --help, 2 after a mistake, reported on stderr with the usage),
// nullopt to go on.
std::optional<int> parse_command_line(const std::vector<std::string_view>& args,
                                      const CommandLine& line);

// Reports a mistake on stderr ("weft: MESSAGE" and the usage); returns 2, the exit status.
int usage_error(const std::string& message, const char* usage);

}  // namespace weft::cli

#endif  // WEFT_EXAMPLES_CLI_OPTIONS_H_
