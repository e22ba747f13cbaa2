# WeftPackaging: shared and static libraries, backend plugins, install rules, the CMake package
# (weftConfig.cmake, one export set per backend) and the pkg-config files. Included by the
# top-level CMakeLists.txt before the folders; weft_install_package() runs after them, when every
# library and its dependencies are known.
include(CMakePackageConfigHelpers)

set(WEFT_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/weft")
set(WEFT_PC_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
# The .pc files find the prefix from their own place (${pcfiledir}): relocatable.
file(RELATIVE_PATH WEFT_PC_TO_PREFIX "/prefix/${WEFT_PC_INSTALL_DIR}" "/prefix")
string(REGEX REPLACE "/$" "" WEFT_PC_TO_PREFIX "${WEFT_PC_TO_PREFIX}")
# What a backend component needs found before its targets load (weftConfig.cmake). The find
# modules named here ship with the package (Debian's libuv and libevent have no CMake config).
set(WEFT_DEPENDENCY_libuv "Libuv")
set(WEFT_DEPENDENCY_libevent "Libevent")
set(WEFT_DEPENDENCY_asio "Boost 1.81.0 CONFIG")

# weft_add_backend_static(target name): the backend's static twin, made in the backend's own
# folder, where its dependencies' imported targets are visible.
function(weft_add_backend_static target name)
  if(WEFT_INSTALL_STATIC)
    _weft_add_static_twin(${target} ${name} TRUE)
  endif()
endfunction()

# weft_add_backend_plugin(target family): `target` (a backend's shared library) also as a
# plugin: weft-backend-<family>.so in the plugin directory, a module whose only code is its
# entry point; loading it loads the backend's library, whose registrations the loader keeps.
function(weft_add_backend_plugin target family)
  set(entry "${PROJECT_BINARY_DIR}/plugins/weft-backend-${family}.cc")
  set(WEFT_PLUGIN_FAMILY "${family}")
  configure_file("${PROJECT_SOURCE_DIR}/cmake/backend_plugin.cc.in" "${entry}" @ONLY)
  add_library(${target}_plugin MODULE "${entry}")
  # The module refers to nothing in the backend's library: keep it needed all the same.
  target_link_options(${target}_plugin PRIVATE "LINKER:--no-as-needed")
  target_link_libraries(${target}_plugin PRIVATE ${target})
  set_target_properties(${target}_plugin PROPERTIES
    PREFIX "" OUTPUT_NAME "weft-backend-${family}" SUFFIX ".so"
    LIBRARY_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/lib/${WEFT_PLUGIN_SUBDIR}"
    INSTALL_RPATH "$ORIGIN/../..")
  set_property(GLOBAL APPEND PROPERTY WEFT_PLUGIN_TARGETS ${target}_plugin)
endfunction()

# A weft library for an item of a link list: weft::core -> weft_core; "" if it is none.
function(_weft_target_of item out)
  set(result "")
  if(TARGET "${item}")
    get_target_property(aliased "${item}" ALIASED_TARGET)
    if(aliased)
      set(item "${aliased}")
    endif()
    get_property(backends GLOBAL PROPERTY WEFT_BACKEND_TARGETS)
    if(item MATCHES "^weft_(core|runners|net)$" OR item IN_LIST backends)
      set(result "${item}")
    endif()
  endif()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

# What a static program links for a weft library: its twin; a backend's, linked whole.
function(_weft_static_link target out)
  get_property(backends GLOBAL PROPERTY WEFT_BACKEND_TARGETS)
  if(target IN_LIST backends)
    set(${out} ${target}_static_whole PARENT_SCOPE)
  else()
    set(${out} ${target}_static PARENT_SCOPE)
  endif()
endfunction()

# The static twin of a shared library: the same objects in an archive, the same usage
# requirements with each weft library replaced by its own twin. A backend's twin is linked whole
# (its registration is a static object nothing refers to): its archive is <name>_archive, and
# <name>_static links that archive whole.
function(_weft_add_static_twin target export_name is_backend)
  set(twin ${target}_static)
  add_library(${twin} STATIC $<TARGET_OBJECTS:${target}>)
  set_target_properties(${twin} PROPERTIES OUTPUT_NAME ${target})
  foreach(property INCLUDE_DIRECTORIES COMPILE_DEFINITIONS COMPILE_OPTIONS COMPILE_FEATURES
                   LINK_OPTIONS)
    get_target_property(value ${target} INTERFACE_${property})
    if(value)
      set_property(TARGET ${twin} PROPERTY INTERFACE_${property} "${value}")
    endif()
  endforeach()
  get_target_property(interface ${target} INTERFACE_LINK_LIBRARIES)
  get_target_property(all ${target} LINK_LIBRARIES)
  foreach(item IN LISTS all)
    _weft_target_of("${item}" weft_target)
    set(mapped "${item}")
    if(weft_target)
      _weft_static_link(${weft_target} mapped)
    endif()
    if(interface AND item IN_LIST interface)
      target_link_libraries(${twin} PUBLIC "${mapped}")
    else()
      target_link_libraries(${twin} PRIVATE "${mapped}")
    endif()
  endforeach()
  if(is_backend)
    set_target_properties(${twin} PROPERTIES EXPORT_NAME ${export_name}_archive)
    add_library(${target}_static_whole INTERFACE)
    set_target_properties(${target}_static_whole PROPERTIES EXPORT_NAME ${export_name}_static)
    target_link_libraries(${target}_static_whole INTERFACE
      "$<BUILD_INTERFACE:$<LINK_LIBRARY:WHOLE_ARCHIVE,${twin}>>"
      "$<INSTALL_INTERFACE:$<LINK_LIBRARY:WHOLE_ARCHIVE,weft::${export_name}_archive>>")
  else()
    set_target_properties(${twin} PROPERTIES EXPORT_NAME ${export_name}_static)
  endif()
endfunction()

# pkg-config names for the link items weft's libraries use; other items are left out (Boost's
# headers are in the compiler's default path on Debian).
function(_weft_pc_items items requires_out libs_out)
  set(requires "")
  set(libs "")
  foreach(item IN LISTS items)
    _weft_target_of("${item}" weft_target)
    if(weft_target)
      get_target_property(pc ${weft_target} WEFT_PC_NAME)
      list(APPEND requires "${pc}")
    elseif(item MATCHES "^absl::(.+)$")
      list(APPEND requires "absl_${CMAKE_MATCH_1}")
    elseif(item STREQUAL "Libuv::libuv")
      list(APPEND requires "libuv")
    elseif(item STREQUAL "Libevent::core")
      list(APPEND requires "libevent")
    elseif(item STREQUAL "Libevent::pthreads")
      list(APPEND requires "libevent_pthreads")
    elseif(item STREQUAL "Threads::Threads")
      list(APPEND libs "-pthread")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES requires)
  list(JOIN requires ", " requires)
  list(REMOVE_DUPLICATES libs)
  list(JOIN libs " " libs)
  set(${requires_out} "${requires}" PARENT_SCOPE)
  set(${libs_out} "${libs}" PARENT_SCOPE)
endfunction()

function(_weft_write_pc target description)
  get_target_property(pc ${target} WEFT_PC_NAME)
  get_target_property(interface ${target} INTERFACE_LINK_LIBRARIES)
  get_target_property(all ${target} LINK_LIBRARIES)
  set(private "")
  foreach(item IN LISTS all)
    if(NOT interface OR NOT item IN_LIST interface)
      list(APPEND private "${item}")
    endif()
  endforeach()
  _weft_pc_items("${interface}" requires libs)
  _weft_pc_items("${private}" requires_private libs_private)
  get_target_property(output ${target} OUTPUT_NAME)
  if(NOT output)
    set(output ${target})
  endif()
  set(flags "")
  if(WEFT_SANITIZE)
    set(flags "-fsanitize=${WEFT_SANITIZE}")
  endif()
  file(GENERATE OUTPUT "${PROJECT_BINARY_DIR}/pkgconfig/${pc}.pc" CONTENT
"prefix=\${pcfiledir}/${WEFT_PC_TO_PREFIX}
libdir=\${prefix}/${CMAKE_INSTALL_LIBDIR}
includedir=\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}
plugindir=\${libdir}/${WEFT_PLUGIN_SUBDIR}

Name: ${pc}
Description: ${description}
Version: ${PROJECT_VERSION}
Requires: ${requires}
Requires.private: ${requires_private}
Cflags: -I\${includedir} ${flags}
Libs: -L\${libdir} -l${output} ${libs} ${flags}
Libs.private: ${libs_private}
")
endfunction()

# Shared-library settings for one of weft's libraries: version, SONAME (0.x: major.minor, each
# minor is an ABI), versioned symbols (a plugin built for another weft version binds to its own
# core, never to this one), run path.
function(_weft_shared_library target)
  set_target_properties(${target} PROPERTIES
    VERSION ${PROJECT_VERSION}
    SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}
    INSTALL_RPATH "$ORIGIN")
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux" OR CMAKE_SYSTEM_NAME MATCHES "BSD")
    set(map "${PROJECT_BINARY_DIR}/weft.map")
    target_link_options(${target} PRIVATE "LINKER:--version-script=${map}")
    set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS "${map}")
  endif()
endfunction()

function(weft_install_package)
  file(WRITE "${PROJECT_BINARY_DIR}/weft.map.in"
       "WEFT_${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR} { global: *; };\n")
  configure_file("${PROJECT_BINARY_DIR}/weft.map.in" "${PROJECT_BINARY_DIR}/weft.map" COPYONLY)

  # The libraries: (target, export name, pkg-config name, description).
  set(libraries weft_core weft_runners)
  set(weft_core_export core)
  set(weft_core_description "weft core: Reactor, Task, the Backend contract and registry")
  set(weft_runners_export runners)
  set(weft_runners_description "weft runners: blocking, threaded and host runners")
  if(TARGET weft_net)
    list(APPEND libraries weft_net)
    set(weft_net_export net)
    set(weft_net_description "weft net: sockets and DNS as coroutines")
  endif()
  set(core_libraries ${libraries})
  get_property(backend_targets GLOBAL PROPERTY WEFT_BACKEND_TARGETS)
  get_property(backend_names GLOBAL PROPERTY WEFT_BACKEND_NAMES)
  foreach(target name IN ZIP_LISTS backend_targets backend_names)
    list(APPEND libraries ${target})
    set(${target}_export ${name})
    set(${target}_description "weft's ${name} backend")
  endforeach()

  foreach(target IN LISTS libraries)
    set_target_properties(${target} PROPERTIES EXPORT_NAME ${${target}_export}
                                               WEFT_PC_NAME weft-${${target}_export})
    _weft_shared_library(${target})
  endforeach()
  # A sanitized weft needs sanitized programs (the runtime must come first): say so to them.
  if(WEFT_SANITIZE)
    target_compile_options(weft_core INTERFACE "$<INSTALL_INTERFACE:-fsanitize=${WEFT_SANITIZE}>")
    target_link_options(weft_core INTERFACE "$<INSTALL_INTERFACE:-fsanitize=${WEFT_SANITIZE}>")
  endif()
  target_include_directories(weft_core INTERFACE
    "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")

  if(WEFT_INSTALL_STATIC)
    foreach(target IN LISTS core_libraries)
      _weft_add_static_twin(${target} ${${target}_export} FALSE)
    endforeach()
  endif()

  foreach(target IN LISTS libraries)
    _weft_write_pc(${target} "${${target}_description}")
  endforeach()
  # weft.pc: what a program that picks its backends at run time links (core and runners).
  file(WRITE "${PROJECT_BINARY_DIR}/pkgconfig/weft.pc"
"prefix=\${pcfiledir}/${WEFT_PC_TO_PREFIX}
plugindir=\${prefix}/${CMAKE_INSTALL_LIBDIR}/${WEFT_PLUGIN_SUBDIR}

Name: weft
Description: weft: core and runners; backends are loaded by name from plugins
Version: ${PROJECT_VERSION}
Requires: weft-core, weft-runners
")

  # Headers: every public header under include/weft/<folder>/, detail/ included (public headers
  # include them; they are internal: docs/install.md).
  foreach(folder IN ITEMS core runners net backends)
    if(EXISTS "${PROJECT_SOURCE_DIR}/${folder}")
      install(DIRECTORY "${PROJECT_SOURCE_DIR}/${folder}/"
              DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/weft/${folder}" COMPONENT development
              FILES_MATCHING PATTERN "*.h")
    endif()
  endforeach()
  install(FILES "${WEFT_BUILD_INCLUDE_DIR}/weft/version.h"
          DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/weft" COMPONENT development)

  # Libraries, one export set for core/runners/net and one per backend, so that
  # find_package(weft COMPONENTS ...) finds the dependencies of the backends asked for only.
  set(core_sets weft_core weft_runners)
  if(TARGET weft_net)
    list(APPEND core_sets weft_net)
  endif()
  set(core_targets ${core_sets})
  if(WEFT_INSTALL_STATIC)
    foreach(target IN LISTS core_sets)
      list(APPEND core_targets ${target}_static)
    endforeach()
  endif()
  install(TARGETS ${core_targets} EXPORT weft-core-targets
          LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT runtime
            NAMELINK_COMPONENT development
          ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT development)
  install(EXPORT weft-core-targets NAMESPACE weft:: DESTINATION "${WEFT_CMAKE_INSTALL_DIR}"
          COMPONENT development)
  foreach(target name IN ZIP_LISTS backend_targets backend_names)
    set(targets ${target})
    if(WEFT_INSTALL_STATIC)
      list(APPEND targets ${target}_static ${target}_static_whole)
    endif()
    install(TARGETS ${targets} EXPORT weft-${name}-targets
            LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT runtime
              NAMELINK_COMPONENT development
            ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT development)
    install(EXPORT weft-${name}-targets NAMESPACE weft:: DESTINATION "${WEFT_CMAKE_INSTALL_DIR}"
            COMPONENT development)
  endforeach()
  get_property(plugin_targets GLOBAL PROPERTY WEFT_PLUGIN_TARGETS)
  if(plugin_targets)
    install(TARGETS ${plugin_targets}
            LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}/${WEFT_PLUGIN_SUBDIR}" COMPONENT runtime)
  endif()

  # The package: weftConfig.cmake, its version file, the find modules it needs.
  set(WEFT_PACKAGE_BACKENDS "${backend_names}")
  set(WEFT_PACKAGE_DEPENDENCIES "")
  foreach(name IN LISTS backend_names)
    string(APPEND WEFT_PACKAGE_DEPENDENCIES
           "set(_weft_dependency_${name} \"${WEFT_DEPENDENCY_${name}}\")\n")
  endforeach()
  set(WEFT_PACKAGE_HAS_NET FALSE)
  set(WEFT_PACKAGE_NET_LIST "")
  if(TARGET weft_net)
    set(WEFT_PACKAGE_HAS_NET TRUE)
    set(WEFT_PACKAGE_NET_LIST ", net")
  endif()
  set(WEFT_PACKAGE_STATIC ${WEFT_INSTALL_STATIC})
  set(WEFT_PLUGIN_DIR_RELATIVE "${CMAKE_INSTALL_LIBDIR}/${WEFT_PLUGIN_SUBDIR}")
  configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/weftConfig.cmake.in"
    "${PROJECT_BINARY_DIR}/weftConfig.cmake" INSTALL_DESTINATION "${WEFT_CMAKE_INSTALL_DIR}"
    PATH_VARS WEFT_PLUGIN_DIR_RELATIVE CMAKE_INSTALL_INCLUDEDIR)
  # 0.x: a minor release breaks the ABI, so 0.2 accepts 0.2.*; from 1.0, the same major.
  if(PROJECT_VERSION_MAJOR EQUAL 0)
    set(compatibility SameMinorVersion)
  else()
    set(compatibility SameMajorVersion)
  endif()
  write_basic_package_version_file("${PROJECT_BINARY_DIR}/weftConfigVersion.cmake"
    VERSION ${PROJECT_VERSION} COMPATIBILITY ${compatibility})
  install(FILES "${PROJECT_BINARY_DIR}/weftConfig.cmake"
                "${PROJECT_BINARY_DIR}/weftConfigVersion.cmake"
                "${PROJECT_SOURCE_DIR}/cmake/FindLibuv.cmake"
                "${PROJECT_SOURCE_DIR}/cmake/FindLibevent.cmake"
          DESTINATION "${WEFT_CMAKE_INSTALL_DIR}" COMPONENT development)
  install(DIRECTORY "${PROJECT_BINARY_DIR}/pkgconfig/" DESTINATION "${WEFT_PC_INSTALL_DIR}"
          COMPONENT development FILES_MATCHING PATTERN "*.pc")
endfunction()
