// Internal: how net/ builds its std::system_error messages ("<operation> <address>: <strerror>").
#ifndef WEFT_NET_DETAIL_ERRORS_H_
#define WEFT_NET_DETAIL_ERRORS_H_

#include <string_view>
#include <system_error>

namespace weft::net::detail {

[[noreturn]] void throw_errno(int error, std::string_view what);
// Makes the fd non-blocking and close-on-exec; throws on failure.
void make_non_blocking(int fd);

}  // namespace weft::net::detail

#endif  // WEFT_NET_DETAIL_ERRORS_H_
