add_test(NAME train COMMAND test_train)
set_tests_properties(train PROPERTIES TIMEOUT 600)
