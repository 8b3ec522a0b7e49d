# Runtime tests (tests/test_runtime.c): device requests, contexts (also in threads), the program
# cache (hits, corrupt entries, disabling), build failures, tensors, cold vs warm builds.
# About 15 s on a 2-core CPU with PoCL; 35 s with sanitizers.
add_test(NAME runtime COMMAND test_runtime)
set_tests_properties(runtime PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77 LABELS runtime)
if(VOXCL_SANITIZE)
  # LLVM inside PoCL replaces the threads' signal stacks, which ASan then fails to unmap; PoCL
  # and LLVM leak a little internally (tests/lsan.supp names only them).
  set_tests_properties(runtime PROPERTIES ENVIRONMENT
    "ASAN_OPTIONS=use_sigaltstack=0;LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/lsan.supp")
endif()

# Under Oclgrind --quick leaves out the slow sections and what Oclgrind cannot run (about 2 s);
# not in sanitizer builds (Oclgrind's preloaded runtime and ASan do not mix).
if(OCLGRIND_EXECUTABLE AND NOT VOXCL_SANITIZE)
  add_test(NAME runtime_oclgrind
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/oclgrind_run.sh ${CMAKE_CURRENT_BINARY_DIR}/runtime_oclgrind.log
                   $<TARGET_FILE:test_runtime> --quick)
  set_tests_properties(runtime_oclgrind PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77 LABELS "runtime;oclgrind")
endif()
