# test_ops_norm: batch norm (training and inference), group norm and channel layer norm on every
# OpenCL device against double-precision references (tests/ref/ref_norm.c), backwards against
# finite differences, determinism, accumulate, refusals. See the top of tests/test_ops_norm.c.
if(TARGET test_ops_norm)
  add_test(NAME ops_norm COMMAND test_ops_norm)
  # 77: no OpenCL device on this machine.
  set_tests_properties(ops_norm PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS "ops")
  if(OCLGRIND_EXECUTABLE)
    # Every norm kernel under Oclgrind (bounds, races, uninitialised reads) on small shapes.
    add_test(NAME ops_norm_oclgrind
             COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/oclgrind_run.sh ${CMAKE_CURRENT_BINARY_DIR}/ops_norm_oclgrind.log
                     $<TARGET_FILE:test_ops_norm> --small)
    set_tests_properties(ops_norm_oclgrind PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77 LABELS "ops;oclgrind")
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
