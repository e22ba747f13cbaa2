#include "runners/runner.h"

#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/errors.h"

namespace weft {

void Runner::throw_run_timeout(Duration timeout) {
  throw TimeoutError(
      absl::StrCat("weft: ", std::string(name()), " runner: task did not finish within ",
                   std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count(),
                   " ms; it was cancelled"));
}

}  // namespace weft
