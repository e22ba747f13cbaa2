#include "weft/core/context.h"

namespace weft::detail {

ContextRef ContextRef::with(const ContextData* base, const void* key,
                            std::shared_ptr<const void> value) {
  auto* data = new ContextData();
  if (base != nullptr) {
    data->bindings_.reserve(base->bindings_.size() + 1);
    for (const ContextData::Binding& binding : base->bindings_) {
      if (binding.key != key) data->bindings_.push_back(binding);
    }
  }
  if (value != nullptr) data->bindings_.push_back({key, std::move(value)});
  if (data->bindings_.empty()) {
    delete data;
    return ContextRef();  // nothing bound: the root context
  }
  return ContextRef(data);
}

namespace {
// The thread's own slot, for set() outside any task or callback.
ContextRef& thread_slot() {
  thread_local ContextRef slot;
  return slot;
}
}  // namespace

void set_in_current_context(const void* key, std::shared_ptr<const void> value) {
  ContextRef next = ContextRef::with(t_context, key, std::move(value));
  if (t_context_owner == nullptr) t_context_owner = &thread_slot();
  *t_context_owner = std::move(next);
  t_context = t_context_owner->get();
}

void clear_root_context_slow() {
  if (t_context_owner != nullptr) *t_context_owner = ContextRef();
  t_context = nullptr;
}

}  // namespace weft::detail
