#include "examples/cli/options.h"

#include <cctype>
#include <cstdio>

namespace weft::cli {

int usage_error(const std::string& message, const char* usage) {
  std::fprintf(stderr, "weft: %s\n%s", message.c_str(), usage);
  return 2;
}

std::optional<int> parse_command_line(const std::vector<std::string_view>& args,
                                      const CommandLine& line) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "-h" || arg == "--help") {
      std::printf("%s", line.usage);
      return 0;
    }
    if (!arg.starts_with("-")) {
      if (line.positional == nullptr || line.positional->size() >= line.max_positional) {
        return usage_error(std::string(line.positional_error.empty()
                                           ? "unexpected argument '" + std::string(arg) + "'"
                                           : std::string(line.positional_error)),
                           line.usage);
      }
      line.positional->emplace_back(arg);
      continue;
    }
    const ValueOption* matched = nullptr;
    std::optional<std::string_view> value;
    for (const ValueOption& option : line.options) {
      if (arg == option.flag) {
        matched = &option;
        if (i + 1 < args.size()) value = args[++i];
      } else if (arg.starts_with(option.flag) && arg.substr(option.flag.size()).starts_with("=")) {
        matched = &option;
        value = arg.substr(option.flag.size() + 1);
      }
      if (matched != nullptr) break;
    }
    if (matched == nullptr) {
      std::string valid;
      for (const ValueOption& option : line.options) {
        valid += std::string(option.flag) + " ";
        for (char c : option.what)
          valid += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        valid += ", ";
      }
      return usage_error("unknown option '" + std::string(arg) + "' for " +
                             std::string(line.command) + "; valid: " + valid + "--help",
                         line.usage);
    }
    if (!value || value->empty()) {
      return usage_error(std::string(matched->flag) + " needs a " + std::string(matched->what),
                         line.usage);
    }
    *matched->value = std::string(*value);
  }
  return std::nullopt;
}

}  // namespace weft::cli
