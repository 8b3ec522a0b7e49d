# test_ops_more: the second op family (activations, broadcasting, pooling, resizing, shapes,
# MSE/KL, clipping) on every OpenCL device against tests/ref/ref_more.c; see tests/test_ops_more.c.
# About 3 s warm (45 s with a cold program cache) on a 2-core CPU with PoCL.
if(TARGET test_ops_more)
  add_test(NAME ops_more COMMAND test_ops_more)
  set_tests_properties(ops_more PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS "ops")
  if(VOXCL_SANITIZE)
    # As tests/runtime.cmake: PoCL's LLVM and ASan's signal stacks; PoCL/LLVM's own leaks.
    set_tests_properties(ops_more PROPERTIES ENVIRONMENT
      "ASAN_OPTIONS=use_sigaltstack=0;LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/lsan.supp")
  endif()
  # Oclgrind with --small: about 25 s. Not in sanitizer builds (Oclgrind and ASan do not mix).
  if(OCLGRIND_EXECUTABLE AND NOT VOXCL_SANITIZE)
    add_test(NAME ops_more_oclgrind
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/oclgrind_run.sh ${CMAKE_CURRENT_BINARY_DIR}/ops_more_oclgrind.log
                     $<TARGET_FILE:test_ops_more> --small)
    set_tests_properties(ops_more_oclgrind PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS "ops;oclgrind")
  endif()
endif()
