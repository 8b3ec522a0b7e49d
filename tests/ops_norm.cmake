# test_ops_norm: batch norm (training and inference), group norm and channel layer norm on every
# OpenCL device against double-precision references (tests/ref/ref_norm.c), backwards against
# finite differences, determinism, accumulate, refusals. See the top of tests/test_ops_norm.c.
if(TARGET test_ops_norm)
  add_test(NAME ops_norm COMMAND test_ops_norm)
  # 77: no OpenCL device on this machine.
  set_tests_properties(ops_norm PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS "ops")
  # The norms have two kernel schemes (src/ops/norm.c): fused per-row work-groups (CPUs) and
  # staged many-work-item reductions (GPUs). Each device picks one; these runs force the other.
  add_test(NAME ops_norm_staged COMMAND test_ops_norm)
  set_tests_properties(ops_norm_staged PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS "ops"
                       ENVIRONMENT "VOXCL_NORM_ALGO=staged")
  add_test(NAME ops_norm_fused COMMAND test_ops_norm)
  set_tests_properties(ops_norm_fused PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS "ops"
                       ENVIRONMENT "VOXCL_NORM_ALGO=fused")
  if(OCLGRIND_EXECUTABLE)
    # Every norm kernel under Oclgrind (bounds, races, uninitialised reads) on small shapes.
    add_test(NAME ops_norm_oclgrind
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/oclgrind_run.sh ${CMAKE_CURRENT_BINARY_DIR}/ops_norm_oclgrind.log
                     $<TARGET_FILE:test_ops_norm> --small)
    set_tests_properties(ops_norm_oclgrind PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77 LABELS "ops;oclgrind"
                         ENVIRONMENT "VOXCL_NORM_ALGO=fused")
    add_test(NAME ops_norm_oclgrind_staged
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/oclgrind_run.sh
                     ${CMAKE_CURRENT_BINARY_DIR}/ops_norm_oclgrind_staged.log $<TARGET_FILE:test_ops_norm> --small)
    set_tests_properties(ops_norm_oclgrind_staged PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77 LABELS "ops;oclgrind"
                         ENVIRONMENT "VOXCL_NORM_ALGO=staged")
  endif()
endif()
# The Python bindings of these ops (python/voxcl/norm.py) against PyTorch; needs the system python
# with numpy and torch (77, skipped, without them). Not in sanitizer builds: an ASan-instrumented
# libvoxcl.so cannot be loaded into python.
if(NOT VOXCL_SANITIZE)
  add_test(NAME python_norm COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/test_python_norm.py)
  set_tests_properties(python_norm PROPERTIES
    ENVIRONMENT "VOXCL_LIBRARY=$<TARGET_FILE:voxcl>;VOXCL_CACHE_DIR=${CMAKE_CURRENT_BINARY_DIR}/python_kernel_cache"
    SKIP_RETURN_CODE 77 TIMEOUT 600 LABELS "python")
endif()
