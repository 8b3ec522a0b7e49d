# Runtime tests: device requests, contexts, the program cache, build failures, tensors.
# The full run builds every kernel file cold and warm (about a minute on a 2-core CPU).
add_test(NAME runtime COMMAND test_runtime)
set_tests_properties(runtime PROPERTIES TIMEOUT 600 LABELS runtime)
