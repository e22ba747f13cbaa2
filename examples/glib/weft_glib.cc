#include "examples/glib/weft_glib.h"

#include <chrono>
#include <climits>
#include <cstdint>

namespace weft::glib {
namespace {

struct WeftSource {
  GSource source;  // first: GLib allocates the struct and hands back &source
  GuestReactor* guest;
  gpointer fd_tag;
};

gboolean prepare(GSource* source, gint* timeout_ms) {
  auto* self = reinterpret_cast<WeftSource*>(source);
  const std::optional<Duration> timeout = self->guest->timeout();
  if (!timeout) {
    *timeout_ms = -1;
    return FALSE;
  }
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(*timeout).count();
  *timeout_ms = static_cast<gint>(std::min<std::int64_t>(ms, INT_MAX));
  return ms == 0;
}

gboolean check(GSource* source) {
  auto* self = reinterpret_cast<WeftSource*>(source);
  if (g_source_query_unix_fd(source, self->fd_tag) & G_IO_IN) return TRUE;
  const std::optional<Duration> timeout = self->guest->timeout();
  return timeout && *timeout == Duration::zero();
}

gboolean dispatch(GSource* source, GSourceFunc, gpointer) {
  reinterpret_cast<WeftSource*>(source)->guest->step();
  return G_SOURCE_CONTINUE;
}

GSourceFuncs funcs = {
    .prepare = prepare,
    .check = check,
    .dispatch = dispatch,
    .finalize = nullptr,
    .closure_callback = nullptr,
    .closure_marshal = nullptr,
};

}  // namespace

GSource* attach(GuestReactor& guest, GMainContext* context) {
  GSource* source = g_source_new(&funcs, sizeof(WeftSource));
  auto* self = reinterpret_cast<WeftSource*>(source);
  self->guest = &guest;
  self->fd_tag = g_source_add_unix_fd(source, guest.fd(), G_IO_IN);
  g_source_set_name(source, "weft");
  g_source_attach(source, context);
  return source;
}

}  // namespace weft::glib
