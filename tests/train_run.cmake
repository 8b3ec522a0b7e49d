add_test(NAME train_run COMMAND test_train_run)
set_tests_properties(train_run PROPERTIES TIMEOUT 600)
