# Dataset layer on the host (tests/test_dataset.c): the synthetic dataset on disk, nnU-Net and
# MSD folders, vx_dataset_check, normalisation, resampling, the patch sampler, folds. No
# OpenCL needed; under a second (a few on a loaded machine), also with sanitizers.
add_test(NAME dataset COMMAND test_dataset)
set_tests_properties(dataset PROPERTIES TIMEOUT 120 LABELS "io;dataset")
