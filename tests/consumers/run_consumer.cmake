# Configures, builds and runs one consumer project (cmake -P script).
# Inputs: ROUTE, CTXEXEC_SOURCE_DIR, CTXEXEC_BINARY_DIR, WORK_DIR, GENERATOR,
# CXX_COMPILER.

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${cmd}")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(consumer_source "${CTXEXEC_SOURCE_DIR}/tests/consumers/${ROUTE}")
set(consumer_build "${WORK_DIR}/build")
set(extra_args "")

if(ROUTE STREQUAL "find_package")
  set(prefix "${WORK_DIR}/prefix")
  run(${CMAKE_COMMAND} --install "${CTXEXEC_BINARY_DIR}" --prefix "${prefix}")
  if(NOT EXISTS "${prefix}/share/cmake/ctxexec/ctxexec-config-version.cmake")
    message(FATAL_ERROR "install did not produce the version file")
  endif()
  list(APPEND extra_args "-DCMAKE_PREFIX_PATH=${prefix}")
else()
  list(APPEND extra_args "-DCTXEXEC_SOURCE_DIR=${CTXEXEC_SOURCE_DIR}")
endif()

run(${CMAKE_COMMAND} -S "${consumer_source}" -B "${consumer_build}"
    -G "${GENERATOR}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" ${extra_args})
run(${CMAKE_COMMAND} --build "${consumer_build}")
run("${consumer_build}/consumer")
