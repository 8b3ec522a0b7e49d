# python/voxcl/more.py against PyTorch (tests/test_python_more.py); skipped (77) without numpy,
# torch or a device, and not registered in sanitizer builds (see tests/python.cmake).
if(NOT VOXCL_SANITIZE)
  add_test(NAME python_more COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/test_python_more.py)
  set_tests_properties(python_more PROPERTIES
    ENVIRONMENT "VOXCL_LIBRARY=$<TARGET_FILE:voxcl>;VOXCL_CACHE_DIR=${CMAKE_CURRENT_BINARY_DIR}/python_kernel_cache"
    SKIP_RETURN_CODE 77 TIMEOUT 600 LABELS "python")
endif()
