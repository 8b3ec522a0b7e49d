# test_uxnet: 3D UX-Net as a vx_model (parameters against vx_model_describe, finite-difference
# gradients, training repeatability, input-size refusal). See the top of tests/test_uxnet.c.
if(TARGET test_uxnet)
  add_test(NAME uxnet COMMAND test_uxnet)
  # 77: no OpenCL device on this machine.
  set_tests_properties(uxnet PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS "models;uxnet")
  if(OCLGRIND_EXECUTABLE)
    # About 6 minutes (the smallest UX-Net still has 32^3 full-resolution blocks): labelled slow and
    # left out of scripts/test.sh; every kernel it runs is also checked under Oclgrind by the op
    # tests. Run it with `ctest -L slow`.
    add_test(NAME uxnet_oclgrind
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/oclgrind_run.sh ${CMAKE_CURRENT_BINARY_DIR}/uxnet_oclgrind.log
                     $<TARGET_FILE:test_uxnet> --small)
    set_tests_properties(uxnet_oclgrind PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77 LABELS "models;uxnet;oclgrind;slow")
  endif()
endif()
