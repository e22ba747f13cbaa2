# FindLibevent: libevent and libevent_pthreads through pkg-config (Debian's libevent-dev
# ships no CMake config). Defines Libevent::core and Libevent::pthreads.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBEVENT IMPORTED_TARGET libevent)
pkg_check_modules(LIBEVENT_PTHREADS IMPORTED_TARGET libevent_pthreads)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Libevent
  REQUIRED_VARS LIBEVENT_LINK_LIBRARIES LIBEVENT_PTHREADS_LINK_LIBRARIES
  VERSION_VAR LIBEVENT_VERSION)
if(Libevent_FOUND AND NOT TARGET Libevent::core)
  add_library(Libevent::core ALIAS PkgConfig::LIBEVENT)
  add_library(Libevent::pthreads ALIAS PkgConfig::LIBEVENT_PTHREADS)
endif()
