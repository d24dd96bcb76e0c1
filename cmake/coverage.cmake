# The coverage report of lib/ for the coverage preset (FUT_COVERAGE=ON,
# gcc --coverage).  CTest runs it twice, as the setup and the cleanup of
# the fixture that every quick suite requires:
#   cmake -DMODE=reset  -DBUILD=<build dir> -P coverage.cmake
#   cmake -DMODE=report -DBUILD=<build dir> -DSOURCE=<source dir>
#         [-DGCOVR=<gcovr>] -P coverage.cmake
# reset deletes the counters (*.gcda) that earlier runs left, so that the
# figure is that of this run alone; report prints gcovr's per-file table
# and its line and branch summary for lib/ only (test/, bench/ and
# examples/ are outside the filter), and writes them to
# <build dir>/coverage.txt for CI to quote.
if(MODE STREQUAL "reset")
  file(GLOB_RECURSE counters "${BUILD}/*.gcda")
  if(counters)
    file(REMOVE ${counters})
  endif()
  return()
endif()

if(NOT MODE STREQUAL "report")
  message(FATAL_ERROR "coverage.cmake: MODE must be reset or report")
endif()
if(NOT GCOVR)
  find_program(GCOVR gcovr)
endif()
if(NOT GCOVR)
  message(FATAL_ERROR "coverage.cmake: gcovr not found (apt-get install gcovr)")
endif()
execute_process(
  COMMAND ${GCOVR} --root "${SOURCE}" --object-directory "${BUILD}"
          --filter "${SOURCE}/lib/" --print-summary
  OUTPUT_VARIABLE report
  ERROR_VARIABLE errors
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gcovr failed (${rc}):\n${errors}")
endif()
file(WRITE "${BUILD}/coverage.txt" "${report}")
message("${report}")
