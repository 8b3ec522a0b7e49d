add_test(NAME models COMMAND test_models)
set_tests_properties(models PROPERTIES TIMEOUT 120)
