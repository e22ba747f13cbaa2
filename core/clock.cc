#include "weft/core/clock.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "weft/core/errors.h"
#include "weft/core/virtual_clock.h"

namespace weft {

ReactorClock::IdleAction ReactorClock::on_idle(const IdleState&) { return IdleAction::kWait; }

std::vector<std::string> clock_names() { return {"steady", "virtual"}; }

std::unique_ptr<ReactorClock> make_clock(std::string_view name) {
  if (name.empty() || name == "steady") return nullptr;
  if (name == "virtual") return std::make_unique<VirtualClock>();
  throw UnknownNameError(absl::StrCat("weft: unknown clock '", std::string(name),
                                      "'; available: ", absl::StrJoin(clock_names(), ", ")));
}

}  // namespace weft
