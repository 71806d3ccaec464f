# counterd_add_library(NAME <layer> SOURCES ... DEPS ...)
# One static library per layer, named counterd_<layer> with an ALIAS
# counterd::<layer>. DEPS may only name layers below this one; the build
# therefore enforces the direction app -> http -> service -> storage -> platform.
function(counterd_add_library)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;DEPS" ${ARGN})
  set(target counterd_${ARG_NAME})
  add_library(${target} STATIC ${ARG_SOURCES})
  add_library(counterd::${ARG_NAME} ALIAS ${target})
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_link_libraries(${target} PUBLIC ${ARG_DEPS}
    PRIVATE counterd_warnings PUBLIC counterd_sanitizers)
endfunction()

# counterd_add_test(NAME <name> SOURCES ... DEPS ... [LABELS ...])
# One gtest executable per test file group; cases are discovered into CTest.
function(counterd_add_test)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock
    GTest::gtest_main counterd_warnings counterd_sanitizers)
  target_include_directories(${ARG_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  gtest_discover_tests(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}"
    DISCOVERY_TIMEOUT 60)
endfunction()
