# Inference machinery and evaluation: sliding window, Gaussian weights, mirroring, Dice, EDT,
# HD95 (all against double-precision or brute-force references) and vx_evaluate_folders on
# NIfTI files in a temporary folder. Host code only: no OpenCL device needed.
add_test(NAME infer COMMAND test_infer)
set_tests_properties(infer PROPERTIES TIMEOUT 120 LABELS "infer")
