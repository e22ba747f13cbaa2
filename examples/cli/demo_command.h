// `weft demo [--backend NAME] [--runner NAME]`: the seed scenario, in two notebook "cells".
//
// Cell 1 prints "Going to sleep...", awaits a 1 s sleep while two timers print "Hanging out!"
// (0.1 s) and "Partying hard!" (0.5 s), prints "I HAVE AWAKENED!" and starts a ticker
// ("LOUD NOISES!" every 0.1 s) as background work of the runner (weft::start_background).
// Between the cells the main thread sleeps 0.5 s: the threaded and host runners' loops keep
// the ticker going, the blocking runner's loop (and the ticker) is paused. Cell 2 awaits
// 0.25 s and stops the ticker.
//
// Each cell runs under a context variable naming it (core/context.h), and every line the
// demo narrates is tagged with the cell whose work printed it: the ticker's lines printed
// while cell 2 runs still read "[cell 1] LOUD NOISES!", because the ticker carries the
// context of the cell that started it (what the seed's author could not get from Jupyter).
//
// Exit status: 0 on success, 1 for a failure at run time (one line on stderr), 2 for a bad
// option or name (the valid ones listed). Names fall back to $WEFT_BACKEND / $WEFT_RUNNER,
// then to the defaults; with `--runner host` the host application is a GLib main loop on its
// own thread (when weft was built with GLib).
//
// Threading: call from main(); it makes and destroys its own runner.
#ifndef WEFT_EXAMPLES_CLI_DEMO_COMMAND_H_
#define WEFT_EXAMPLES_CLI_DEMO_COMMAND_H_

#include <string_view>
#include <vector>

namespace weft::cli {

// `args` are the words after "demo".
int run_demo_command(const std::vector<std::string_view>& args);

}  // namespace weft::cli

#endif  // WEFT_EXAMPLES_CLI_DEMO_COMMAND_H_
