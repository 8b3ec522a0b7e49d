# test_ops_research: the research layers (masked-region norm, squeeze, orthogonal down/up and
# channel mixing) on every OpenCL device against tests/ref/ref_research.c. See the top of
# tests/test_ops_research.c.
if(TARGET test_ops_research)
  add_test(NAME ops_research COMMAND test_ops_research)
  # 77: no OpenCL device on this machine.
  set_tests_properties(ops_research PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS "ops;research")
  if(OCLGRIND_EXECUTABLE)
    add_test(NAME ops_research_oclgrind
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/oclgrind_run.sh ${CMAKE_CURRENT_BINARY_DIR}/ops_research_oclgrind.log
                     $<TARGET_FILE:test_ops_research> --small)
    set_tests_properties(ops_research_oclgrind PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77
                         LABELS "ops;research;oclgrind")
  endif()
endif()
