# Fails unless README.md contains, verbatim, the lines of EXAMPLE between
# its "// [readme-begin]" and "// [readme-end]" markers: the README shows
# the example that ctest builds and runs.
#
#   cmake -DREADME=README.md -DEXAMPLE=examples/x.cpp -P readme_snippets.cmake

file(READ "${README}" readme)
file(READ "${EXAMPLE}" example)
string(FIND "${example}" "// [readme-begin]\n" begin)
string(FIND "${example}" "// [readme-end]" end)
if(begin EQUAL -1 OR end EQUAL -1)
  message(FATAL_ERROR "${EXAMPLE}: no readme-begin/readme-end markers")
endif()
string(LENGTH "// [readme-begin]\n" marker_length)
math(EXPR first "${begin} + ${marker_length}")
math(EXPR length "${end} - ${first}")
string(SUBSTRING "${example}" ${first} ${length} snippet)
string(FIND "${readme}" "${snippet}" found)
if(found EQUAL -1)
  message(FATAL_ERROR "README.md does not show ${EXAMPLE} as it is:\n${snippet}")
endif()
message(STATUS "README.md shows ${EXAMPLE}")
