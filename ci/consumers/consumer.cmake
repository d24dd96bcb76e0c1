# fut_consumer(<name> <fut target>): app.c built with strict consumer
# warnings (fut.h must be clean under them) and registered as a test: the
# consumer's ctest must list these and nothing of fut's.
set(FUT_CONSUMER_APP ${CMAKE_CURRENT_LIST_DIR}/app.c)
enable_testing()
function(fut_consumer name lib)
  add_executable(${name} ${FUT_CONSUMER_APP})
  set_target_properties(${name} PROPERTIES C_STANDARD 11 C_EXTENSIONS OFF)
  target_compile_options(${name} PRIVATE -Wall -Wextra -Wpedantic -Werror
    -Wcast-qual -Wcast-align -Wshadow -Wstrict-prototypes -Wconversion)
  target_link_libraries(${name} PRIVATE ${lib})
  add_test(NAME ${name} COMMAND ${name})
endfunction()
