add_test(NAME checkpoint COMMAND test_checkpoint)
set_tests_properties(checkpoint PROPERTIES TIMEOUT 300)
