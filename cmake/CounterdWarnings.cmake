# Warning flags for every counterd target, kept in one INTERFACE target
# (fmt's PEDANTIC_COMPILE_FLAGS). -Werror only when COUNTERD_WERROR is on (CI).
add_library(counterd_warnings INTERFACE)
target_compile_options(counterd_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
  -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual -Wnull-dereference
  -Wimplicit-fallthrough)
if(COUNTERD_WERROR)
  target_compile_options(counterd_warnings INTERFACE -Werror)
endif()

add_library(counterd_sanitizers INTERFACE)
if(COUNTERD_SANITIZE)
  target_compile_options(counterd_sanitizers INTERFACE
    -fsanitize=${COUNTERD_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(counterd_sanitizers INTERFACE -fsanitize=${COUNTERD_SANITIZE})
  if(COUNTERD_SANITIZE MATCHES "thread")
    # g++ warns that TSan does not model atomic_thread_fence, which Asio
    # uses in its scheduler; with -Werror that would stop the TSan build.
    target_compile_options(counterd_sanitizers INTERFACE -Wno-tsan)
  endif()
endif()

# Clang's thread-safety analysis (-Wthread-safety): checks the GUARDED_BY /
# REQUIRES / EXCLUDES annotations at compile time. Clang only; g++ has no
# such analysis, so the option is refused there rather than ignored.
option(COUNTERD_THREAD_SAFETY_ANALYSIS
  "Add -Wthread-safety (clang only; the 'clang' preset turns it on)" OFF)
if(COUNTERD_THREAD_SAFETY_ANALYSIS)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "COUNTERD_THREAD_SAFETY_ANALYSIS needs clang "
      "(-DCMAKE_CXX_COMPILER=clang++-14, or the 'clang' preset)")
  endif()
  target_compile_options(counterd_warnings INTERFACE -Wthread-safety)
endif()
