# test_invres: coupling blocks (inverse exactness, memory-free backward vs finite differences and
# stored-activation backprop), invres-partial / invres-full training, memory planning against
# unet3d, the VAE branch's gradients, odd sizes. See the top of tests/test_invres.c.
if(TARGET test_invres)
  add_test(NAME invres COMMAND test_invres)
  # 77: no OpenCL device on this machine.
  set_tests_properties(invres PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS "models;invres")
  if(OCLGRIND_EXECUTABLE)
    add_test(NAME invres_oclgrind
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/oclgrind_run.sh ${CMAKE_CURRENT_BINARY_DIR}/invres_oclgrind.log
                     $<TARGET_FILE:test_invres> --small)
    set_tests_properties(invres_oclgrind PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77
                         LABELS "models;invres;oclgrind")
  endif()
endif()
