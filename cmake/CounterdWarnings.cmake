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
