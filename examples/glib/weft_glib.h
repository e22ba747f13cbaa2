// weft inside a GLib main loop: a GSource that drives a GuestReactor.
//
// GLib polls the guest's fd, sleeps at most its timeout(), and dispatches step(): weft's
// callbacks and tasks then run on the GLib thread, between the host's own sources, and never
// block it. This is the whole integration; see examples/glib/glib_host.cc for a program.
//
// Threading: attach on the thread that runs `context`; the GuestReactor belongs to it too.
// Lifetime: the returned source refers to `guest`; destroy the source (g_source_destroy +
// g_source_unref) before the guest.
#ifndef WEFT_EXAMPLES_GLIB_WEFT_GLIB_H_
#define WEFT_EXAMPLES_GLIB_WEFT_GLIB_H_

#include <glib.h>

#include "weft/runners/guest_reactor.h"

namespace weft::glib {

// Attaches a source driving `guest` to `context` (nullptr: the default context). Returns a
// reference the caller owns (g_source_unref when done).
GSource* attach(GuestReactor& guest, GMainContext* context = nullptr);

}  // namespace weft::glib

#endif  // WEFT_EXAMPLES_GLIB_WEFT_GLIB_H_
