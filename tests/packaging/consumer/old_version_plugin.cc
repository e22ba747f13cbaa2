// A plugin that says it was built for weft 0.1.0: weft must refuse it, naming both versions,
// and keep none of what it registered.
#include <memory>

#include "weft/core/backend_registry.h"

namespace {

const weft::BackendRegistration kRegistration(weft::BackendInfo{
    .name = "oldweft",
    .factory = [](weft::LoopHooks&) -> std::unique_ptr<weft::Backend> { return nullptr; },
});

}  // namespace

// WEFT_BACKEND_PLUGIN with another version: what a plugin built against weft 0.1 carries.
extern "C" {
extern __attribute__((visibility("default")))
const weft::BackendPluginEntry weft_backend_plugin_entry;
const weft::BackendPluginEntry weft_backend_plugin_entry = {
    "0.1.0", "weft-0.1 " WEFT_DETAIL_ABI_STDLIB, "oldweft", &weft::detail::plugin_core_anchor};
}
