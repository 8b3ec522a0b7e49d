# test_ops: every op on every OpenCL device against double-precision references (tests/ref/),
# backwards against finite differences. See the top of tests/test_ops.c.
if(TARGET test_ops)
  add_test(NAME ops COMMAND test_ops)
  # 77: no OpenCL device on this machine.
  set_tests_properties(ops PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS "ops")
  # Instance norm with the kernel scheme this device would not pick (see ops_norm.cmake).
  add_test(NAME ops_instance_norm_staged COMMAND test_ops -o instance_norm)
  set_tests_properties(ops_instance_norm_staged PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS "ops"
                       ENVIRONMENT "VOXCL_NORM_ALGO=staged")
  add_test(NAME ops_instance_norm_fused COMMAND test_ops -o instance_norm)
  set_tests_properties(ops_instance_norm_fused PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS "ops"
                       ENVIRONMENT "VOXCL_NORM_ALGO=fused")
  if(OCLGRIND_EXECUTABLE)
    # Oclgrind becomes the only platform of the program it runs; --small keeps it to ~3 minutes.
    add_test(NAME ops_oclgrind
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/oclgrind_run.sh ${CMAKE_CURRENT_BINARY_DIR}/ops_oclgrind.log
                     $<TARGET_FILE:test_ops> --small)
    set_tests_properties(ops_oclgrind PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS "ops;oclgrind"
                         ENVIRONMENT "VOXCL_NORM_ALGO=fused")
    add_test(NAME ops_oclgrind_instance_norm_staged
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/oclgrind_run.sh
                     ${CMAKE_CURRENT_BINARY_DIR}/ops_oclgrind_in_staged.log $<TARGET_FILE:test_ops> --small -o instance_norm)
    set_tests_properties(ops_oclgrind_instance_norm_staged PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77
                         LABELS "ops;oclgrind" ENVIRONMENT "VOXCL_NORM_ALGO=staged")
  endif()
endif()
