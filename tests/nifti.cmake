# NIfTI reading and writing (no OpenCL needed).
add_test(NAME nifti COMMAND test_nifti)
set_tests_properties(nifti PROPERTIES LABELS "io" TIMEOUT 300)

# Cross-check of voxcl-written files with nibabel; skipped (exit 77) where nibabel is missing.
# The system python first: Debian's python3-nibabel and python3-numpy live there.
find_program(VOXCL_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
find_program(VOXCL_PYTHON3 NAMES python3)
if(VOXCL_PYTHON3)
  add_test(NAME nifti_nibabel
    COMMAND ${VOXCL_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/nifti_nibabel_check.py $<TARGET_FILE:test_nifti>
            ${CMAKE_CURRENT_BINARY_DIR}/nifti_nibabel_files)
  set_tests_properties(nifti_nibabel PROPERTIES LABELS "io" SKIP_RETURN_CODE 77 TIMEOUT 120)
endif()
