# Golden files: the C library against PyTorch's forward outputs and gradients stored in
# tests/golden/*.vxg (tests/test_golden.c; regenerate the files with
# /usr/bin/python3 tests/golden/make_golden.py). Needs no Python. About 1 s warm, 20 s with a
# cold kernel cache on a 2-core CPU with PoCL.
if(TARGET test_golden)
  add_test(NAME golden COMMAND test_golden ${CMAKE_CURRENT_SOURCE_DIR}/golden)
  set(VOXCL_GOLDEN_ENV "VOXCL_CACHE_DIR=${CMAKE_CURRENT_BINARY_DIR}/golden_kernel_cache")
  if(VOXCL_SANITIZE)
    # As for the runtime test: PoCL's LLVM replaces the threads' signal stacks; PoCL and LLVM
    # leak a little internally (tests/lsan.supp names only them).
    list(APPEND VOXCL_GOLDEN_ENV "ASAN_OPTIONS=use_sigaltstack=0"
         "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/lsan.supp")
  endif()
  set_tests_properties(golden PROPERTIES ENVIRONMENT "${VOXCL_GOLDEN_ENV}" TIMEOUT 300 SKIP_RETURN_CODE 77
                       LABELS "ops")
endif()
