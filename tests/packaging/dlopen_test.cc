// Loads each library named on the command line with dlopen(), as a program that does not link
// weft would (Python's ctypes, a plugin host). weft's hot thread-locals are initial-exec
// (core/detail/fast_tls.h): they must fit the static TLS that glibc keeps for libraries loaded
// late, or dlopen() fails with "cannot allocate memory in static TLS block". Exit status 0 when
// every library loaded; otherwise the loader's message.
#include <dlfcn.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s LIBRARY...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    if (dlopen(argv[i], RTLD_NOW | RTLD_LOCAL) == nullptr) {
      std::fprintf(stderr, "dlopen(%s) failed: %s\n", argv[i], dlerror());
      return 1;
    }
    std::printf("loaded %s\n", argv[i]);
  }
  return 0;
}
