# test_conv_variants: every convolution algorithm (VOXCL_CONV_ALGO = gemm, direct, depthwise and
# the default) against a double-precision reference and the GEMM path, with determinism checks
# and a small-workspace context for the slab paths. See the top of tests/test_conv_variants.c.
if(TARGET test_conv_variants)
  add_test(NAME conv_variants COMMAND test_conv_variants)
  # 77: no OpenCL device on this machine.
  set_tests_properties(conv_variants PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77 LABELS "ops")
  if(OCLGRIND_EXECUTABLE)
    # Every variant's kernels under Oclgrind (bounds, races, uninitialised reads) on small shapes.
    add_test(NAME conv_variants_oclgrind
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/oclgrind_run.sh
                     ${CMAKE_CURRENT_BINARY_DIR}/conv_variants_oclgrind.log $<TARGET_FILE:test_conv_variants> --small)
    set_tests_properties(conv_variants_oclgrind PROPERTIES TIMEOUT 1800 SKIP_RETURN_CODE 77 LABELS "ops;oclgrind")
  endif()
endif()
