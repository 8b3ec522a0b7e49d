# test_dualnorm: the DualNorm module, the AC-Norm op and the DualNorm-UNet (two-pass training,
# AC-Norm conversion). See the top of tests/test_dualnorm.c.
if(TARGET test_dualnorm)
  add_test(NAME dualnorm COMMAND test_dualnorm)
  # 77: no OpenCL device on this machine.
  set_tests_properties(dualnorm PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS "models;dualnorm")
  if(OCLGRIND_EXECUTABLE)
    add_test(NAME dualnorm_oclgrind
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/oclgrind_run.sh ${CMAKE_CURRENT_BINARY_DIR}/dualnorm_oclgrind.log
                     $<TARGET_FILE:test_dualnorm> --small)
    set_tests_properties(dualnorm_oclgrind PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77
                         LABELS "models;dualnorm;oclgrind")
  endif()
endif()
