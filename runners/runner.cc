#include "weft/runners/runner.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "weft/core/errors.h"

namespace weft {

void Runner::throw_run_timeout(Duration timeout) {
  throw TimeoutError(absl::StrCat(
      "weft: ", std::string(name()), " runner: task did not finish within ",
      std::chrono::duration_cast<std::chrono::milliseconds>(std::max(timeout, Duration::zero()))
          .count(),
      " ms; it was cancelled"));
}

void Runner::throw_run_stopped() {
  throw LoopStopped(absl::StrCat("weft: ", std::string(name()),
                                 " runner: the loop was stopped (Reactor::stop()) before the task "
                                 "finished; it was cancelled"));
}

void Runner::throw_inherited() const {
  throw UsageError(absl::StrCat("weft: the ", std::string(name()),
                                " runner was created before fork(); it cannot be used in the "
                                "child process (its loop belongs to the parent). Make a new "
                                "runner in the child"));
}

}  // namespace weft
