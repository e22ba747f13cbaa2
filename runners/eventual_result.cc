#include "weft/runners/eventual_result.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "weft/core/errors.h"

namespace weft {

void throw_wait_timeout(Duration timeout) {
  throw TimeoutError(absl::StrCat(
      "weft: result not ready after ",
      std::chrono::duration_cast<std::chrono::milliseconds>(std::max(timeout, Duration::zero()))
          .count(),
      " ms"));
}

}  // namespace weft
