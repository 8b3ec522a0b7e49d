# test_ops: every op on every OpenCL device against double-precision references (tests/ref/),
# backwards against finite differences. See the top of tests/test_ops.c.
if(TARGET test_ops)
  add_test(NAME ops COMMAND test_ops)
  # 77: no OpenCL device on this machine.
  set_tests_properties(ops PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS "ops")
  if(OCLGRIND_EXECUTABLE)
    # Oclgrind becomes the only platform of the program it runs; --small keeps it to ~3 minutes.
    add_test(NAME ops_oclgrind
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/oclgrind_run.sh ${CMAKE_CURRENT_BINARY_DIR}/ops_oclgrind.log
                     $<TARGET_FILE:test_ops> --small)
    set_tests_properties(ops_oclgrind PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS "ops;oclgrind")
  endif()
endif()
