# Test registration helpers. Every test carries labels so that subsets run
# with `ctest -L unit|integration|crash|slow`.

# nb_test(NAME SOURCES a.c b.c LIBS mod... LABELS unit [TIMEOUT s])
#   A C test binary; cmocka and tests/test.h are available to it.
function(nb_test name)
    cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
    if(NOT T_LABELS)
        set(T_LABELS unit)
    endif()
    if(NOT T_TIMEOUT)
        set(T_TIMEOUT 120)
    endif()
    add_executable(${name} ${T_SOURCES})
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/src)
    target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA Threads::Threads)
    add_test(NAME ${name} COMMAND ${name} ${T_ARGS})
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
        ENVIRONMENT "NB_TEST_TMPDIR=${CMAKE_BINARY_DIR}/test-tmp")
endfunction()

# nb_py_test(NAME FILE [LABELS ...] [TIMEOUT s])
#   A pytest file run with Debian's /usr/bin/python3 against the real
#   binaries; NEBULA_BIN points at the built `nebula`.
function(nb_py_test name file)
    cmake_parse_arguments(T "" "TIMEOUT" "LABELS" ${ARGN})
    if(NOT T_LABELS)
        set(T_LABELS integration)
    endif()
    if(NOT T_TIMEOUT)
        set(T_TIMEOUT 300)
    endif()
    add_test(NAME ${name}
        COMMAND /usr/bin/python3 -m pytest -q -p no:cacheprovider ${file})
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
        ENVIRONMENT "NEBULA_BIN=$<TARGET_FILE:nebula>;NB_BUILD_DIR=${CMAKE_BINARY_DIR};NB_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endfunction()
