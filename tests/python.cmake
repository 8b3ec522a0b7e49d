# The Python package (python/voxcl) against PyTorch: every op forward and backward, optimisers,
# errors, devices, a NIfTI round trip checked with nibabel (tests/test_python.py). Needs the
# system python with numpy and torch (exit 77, skipped, without them). About 60 s cold on a
# 2-core CPU with PoCL (kernel builds), 6 s with the program cache below filled.
# Not in sanitizer builds: an ASan-instrumented libvoxcl.so cannot be loaded into python.
if(NOT VOXCL_SANITIZE)
  add_test(NAME python COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/test_python.py)
  set_tests_properties(python PROPERTIES
    ENVIRONMENT "VOXCL_LIBRARY=$<TARGET_FILE:voxcl>;VOXCL_CACHE_DIR=${CMAKE_CURRENT_BINARY_DIR}/python_kernel_cache"
    SKIP_RETURN_CODE 77 TIMEOUT 600 LABELS "python")
endif()

if(NOT VOXCL_SANITIZE)
  add_test(NAME python_predict COMMAND /usr/bin/python3 ${CMAKE_SOURCE_DIR}/tests/test_python_predict.py $<TARGET_FILE:voxcl_cli>)
  set_tests_properties(python_predict PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
                       ENVIRONMENT "VOXCL_LIBRARY=$<TARGET_FILE:voxcl>")
endif()
