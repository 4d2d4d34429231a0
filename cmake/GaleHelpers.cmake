set(GALE_MODULES "" CACHE INTERNAL "")

# gale_module(name SOURCES ... DEPS ...): one library per module, public headers in
# <module>/include (the include path alone shows what users may touch), sources beside them.
function(gale_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(gale_${name} ${M_SOURCES})
  add_library(gale::${name} ALIAS gale_${name})
  set_target_properties(gale_${name} PROPERTIES EXPORT_NAME ${name} OUTPUT_NAME gale_${name})
  target_include_directories(gale_${name}
    PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(gale_${name} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  install(TARGETS gale_${name} EXPORT galeTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  set(GALE_MODULES ${GALE_MODULES} gale_${name} CACHE INTERNAL "")
endfunction()

# gale_test(name SOURCES ... DEPS ... [LABELS ...] [TIMEOUT s]): one GoogleTest binary, one ctest entry.
function(gale_test name)
  if(NOT GALE_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main)
  # tests/util: helpers the tests of several modules share (a temporary directory, running a program).
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/tests/util)
  add_test(NAME ${name} COMMAND ${name} --gtest_brief=1)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT})
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()

if(GALE_BUILD_TESTS)
  find_package(GTest QUIET)
  if(NOT GTest_FOUND)
    message(FATAL_ERROR "gale: GoogleTest not found. Install it: apt-get install libgtest-dev")
  endif()
endif()
