# Run after Doxygen by the docs target (cmake -DMAN_DIR=... -P): Doxygen's
# MAN_LINKS writes a one-line page (".so man3/<page>") for every documented
# name, struct fields and the anonymous enum included, which would give
# free(3), index(3) or shutdown(3) a page of fut's.  Keep the links named
# fut... or FUT...; real pages stay.
file(GLOB pages "${MAN_DIR}/*.3")
foreach(page IN LISTS pages)
  get_filename_component(name "${page}" NAME)
  if(name MATCHES "^(fut|FUT)")
    continue()
  endif()
  file(STRINGS "${page}" first LIMIT_COUNT 1)
  if(first MATCHES "^\\.so ")
    file(REMOVE "${page}")
  endif()
endforeach()
