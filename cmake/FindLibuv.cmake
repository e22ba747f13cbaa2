# FindLibuv: libuv through pkg-config (Debian's libuv1-dev ships no CMake config).
# Defines the imported target Libuv::libuv.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBUV IMPORTED_TARGET libuv)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Libuv REQUIRED_VARS LIBUV_LINK_LIBRARIES VERSION_VAR LIBUV_VERSION)
if(Libuv_FOUND AND NOT TARGET Libuv::libuv)
  add_library(Libuv::libuv ALIAS PkgConfig::LIBUV)
endif()
