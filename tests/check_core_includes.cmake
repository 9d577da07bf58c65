# Fails if a header of the core (include/ctxexec/*.hpp and
# include/ctxexec/detail/*.hpp, except the umbrellas of other parts) includes
# anything but the C++ standard library, ctxexec's own core headers, and
# three platform headers, each behind __has_include with a fallback: POSIX
# threads (thread-exit cleanup) and Linux's membarrier system call (the
# asymmetric fence of detail/asymmetric_fence.hpp).
#
#   cmake -DINCLUDE_DIR=include -P check_core_includes.cmake

cmake_minimum_required(VERSION 3.25)

file(GLOB top "${INCLUDE_DIR}/ctxexec/*.hpp")
file(GLOB detail "${INCLUDE_DIR}/ctxexec/detail/*.hpp")
# Umbrellas of the parts above the core live beside it by convention.
set(umbrellas asio.hpp threads.hpp ctxexec.hpp http.hpp spdlog.hpp)

# The C++ standard library headers (C++20), and the C headers it inherits.
set(std_headers
  algorithm any array atomic barrier bit bitset charconv chrono compare
  complex concepts condition_variable coroutine deque exception execution
  expected filesystem format forward_list fstream functional future
  initializer_list iomanip ios iosfwd iostream istream iterator latch limits
  list locale map memory memory_resource mutex new numbers numeric optional
  ostream queue random ranges ratio regex scoped_allocator semaphore set
  shared_mutex source_location span sstream stack stdexcept stop_token
  streambuf string string_view syncstream system_error thread tuple
  type_traits typeindex typeinfo unordered_map unordered_set utility valarray
  variant vector version
  cassert cctype cerrno cfenv cfloat cinttypes climits clocale cmath csetjmp
  csignal cstdarg cstddef cstdint cstdio cstdlib cstring ctime cuchar cwchar
  cwctype)
set(platform_headers pthread.h linux/membarrier.h sys/syscall.h unistd.h)

set(failures "")
set(checked 0)
foreach(header IN LISTS top detail)
  get_filename_component(name "${header}" NAME)
  if(header IN_LIST top AND name IN_LIST umbrellas)
    continue()
  endif()
  math(EXPR checked "${checked} + 1")
  file(STRINGS "${header}" lines REGEX "^[ \t]*#[ \t]*include")
  foreach(line IN LISTS lines)
    if(NOT line MATCHES "#[ \t]*include[ \t]*[<\"]([^>\"]+)[>\"]")
      list(APPEND failures "${header}: unparsed: ${line}")
      continue()
    endif()
    set(included "${CMAKE_MATCH_1}")
    if(included IN_LIST std_headers OR included IN_LIST platform_headers)
      continue()
    endif()
    if(included MATCHES "^ctxexec/([^/]+\\.hpp|detail/[^/]+\\.hpp)$")
      get_filename_component(inc_name "${included}" NAME)
      if(NOT included MATCHES "^ctxexec/detail/" AND inc_name IN_LIST umbrellas)
        list(APPEND failures "${header}: includes the umbrella <${included}>")
      endif()
      continue()
    endif()
    list(APPEND failures "${header}: includes <${included}>")
  endforeach()
endforeach()

if(checked LESS 5)
  message(FATAL_ERROR "found only ${checked} core headers under ${INCLUDE_DIR}")
endif()
if(failures)
  list(JOIN failures "\n" text)
  message(FATAL_ERROR "core headers must use only the standard library:\n${text}")
endif()
message(STATUS "${checked} core headers include only the standard library")
