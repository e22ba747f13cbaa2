#include "weft/runners/detail/abandoned.h"

#include <atomic>

namespace weft::detail {
namespace {

struct Node {
  const void* object;
  Node* next;
};

// Never destroyed: the list must outlive everything abandoned, to the process's end.
std::atomic<Node*> g_abandoned{nullptr};

}  // namespace

void abandon(const void* object) {
  if (object == nullptr) return;
  Node* node = new Node{.object = object, .next = g_abandoned.load(std::memory_order_relaxed)};
  while (!g_abandoned.compare_exchange_weak(node->next, node, std::memory_order_release,
                                            std::memory_order_relaxed)) {
  }
}

}  // namespace weft::detail
