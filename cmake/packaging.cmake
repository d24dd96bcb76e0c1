# Packages (cpack, or `cmake --workflow --preset package`): a .deb pair and a
# .tar.gz.  The packages need the shared and the static library, so configure
# with FUT_BUILD_STATIC_AND_SHARED=ON (the package preset does, with
# CMAKE_INSTALL_PREFIX=/usr).
#   libfut0     component "runtime": libfut.so.0 and libfut.so.0.x.y
#   libfut-dev  component "dev": headers, libfut.so, libfut.a, the CMake
#               package and fut.pc
#   fut-<version>-Linux.tar.gz: both, under one directory
if(NOT FUT_BUILD_STATIC_AND_SHARED)
  message(STATUS "fut: packages will hold only the one library this build makes "
    "(FUT_BUILD_STATIC_AND_SHARED=ON builds both)")
endif()

set(CPACK_PACKAGE_NAME fut)
set(CPACK_PACKAGE_VENDOR "the fut authors")
set(CPACK_PACKAGE_CONTACT "the fut authors")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_RESOURCE_FILE_README ${PROJECT_SOURCE_DIR}/README.md)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_GENERATOR DEB TGZ)
set(CPACK_COMPONENTS_ALL runtime dev)

# .tar.gz: one archive with everything.
set(CPACK_ARCHIVE_COMPONENT_INSTALL OFF)

# .deb: one package per component.
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME libfut${PROJECT_VERSION_MAJOR})
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_RUNTIME_DESCRIPTION "\
fut runs functions on a thread pool and hands back reference-counted
futures, with promises, continuations, combinators and timers.

This package holds the shared library.")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
find_program(FUT_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(FUT_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
else()
  set(CPACK_DEBIAN_RUNTIME_PACKAGE_DEPENDS "libc6")
endif()
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libfut-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libfut${PROJECT_VERSION_MAJOR} (= ${PROJECT_VERSION})")
set(CPACK_DEBIAN_DEV_DESCRIPTION "\
fut runs functions on a thread pool and hands back reference-counted
futures, with promises, continuations, combinators and timers.

This package holds the headers, the static library, the CMake package
(find_package(fut CONFIG)) and the pkg-config file (fut.pc).")

include(CPack)
cpack_add_component(runtime DISPLAY_NAME "Shared library")
cpack_add_component(dev DISPLAY_NAME "Development files" DEPENDS runtime)
