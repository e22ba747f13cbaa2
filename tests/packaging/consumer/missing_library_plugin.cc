// A plugin that needs a library the test removes after building it (as a backend plugin whose
// native library is not installed): loading it must fail with an error naming that library.
#include <memory>

#include "weft/core/backend_registry.h"

int weft_test_gone_function();  // in libweft_test_gone.so

namespace {

const weft::BackendRegistration kRegistration(weft::BackendInfo{
    .name = "missinglib",
    .factory = [](weft::LoopHooks&) -> std::unique_ptr<weft::Backend> {
      weft_test_gone_function();
      return nullptr;
    },
});

}  // namespace

WEFT_BACKEND_PLUGIN("missinglib");
