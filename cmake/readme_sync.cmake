# Checks that README.md quotes each example exactly as it is in examples/
# (from its #include <fut.h> line on), so the README cannot drift from code
# that the tests compile and run.  Usage:
#   cmake -DREADME=... -DEXAMPLES="a.c;b.c" -P readme_sync.cmake
file(READ "${README}" readme)
foreach(example ${EXAMPLES})
  file(READ "${example}" code)
  string(FIND "${code}" "#include <fut.h>" at)
  string(SUBSTRING "${code}" ${at} -1 code)
  string(FIND "${readme}" "${code}" found)
  if(found EQUAL -1)
    message(FATAL_ERROR "README.md does not quote ${example} as it is")
  endif()
endforeach()
message(STATUS "README.md quotes the examples as they are")
