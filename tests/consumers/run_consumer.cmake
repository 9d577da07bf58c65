# Configures, builds and runs one consumer project (cmake -P script).
# Inputs: ROUTE, CTXEXEC_SOURCE_DIR, CTXEXEC_BINARY_DIR, WORK_DIR, GENERATOR,
# CXX_COMPILER, CXX_FLAGS and LINKER_FLAGS (the build's, so that a sanitizer
# build checks its consumers too).

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

if(ROUTE MATCHES "^find_package")
  set(prefix "${WORK_DIR}/prefix")
  run(${CMAKE_COMMAND} --install "${CTXEXEC_BINARY_DIR}" --prefix "${prefix}")
  if(NOT EXISTS "${prefix}/share/cmake/ctxexec/ctxexec-config-version.cmake")
    message(FATAL_ERROR "install did not produce the version file")
  endif()
  list(APPEND extra_args "-DCMAKE_PREFIX_PATH=${prefix}")
else()
  list(APPEND extra_args "-DCTXEXEC_SOURCE_DIR=${CTXEXEC_SOURCE_DIR}")
endif()
if(ROUTE MATCHES "core")
  # The core alone: as on a machine without Boost and Abseil.
  list(APPEND extra_args -DCMAKE_DISABLE_FIND_PACKAGE_Boost=ON
    -DCMAKE_DISABLE_FIND_PACKAGE_absl=ON)
endif()

run(${CMAKE_COMMAND} -S "${consumer_source}" -B "${consumer_build}"
    -G "${GENERATOR}" "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
    "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}"
    ${extra_args})
run(${CMAKE_COMMAND} --build "${consumer_build}")
run("${consumer_build}/consumer")
