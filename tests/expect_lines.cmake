# Runs PROGRAM and fails unless it exits 0 and prints exactly the lines in
# LINES (a ;-list), in any order: for examples whose output order depends
# on thread scheduling.
#
#   cmake -DPROGRAM=path -DLINES="a;b" -P expect_lines.cmake

execute_process(COMMAND "${PROGRAM}" RESULT_VARIABLE status
  OUTPUT_VARIABLE output ERROR_VARIABLE errors)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} exited with ${status}:\n${output}${errors}")
endif()
string(REGEX REPLACE "\n$" "" output "${output}")
string(REPLACE "\n" ";" actual "${output}")
list(SORT actual)
set(expected ${LINES})
list(SORT expected)
if(NOT actual STREQUAL expected)
  message(FATAL_ERROR "${PROGRAM} printed:\n${output}\nexpected, in any order:\n${LINES}")
endif()
