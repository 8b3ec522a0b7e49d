add_test(NAME models COMMAND test_models)
set_tests_properties(models PROPERTIES TIMEOUT 120)
# test_model_api: every registered network through the generic vx_model handle (see its top).
add_test(NAME model_api COMMAND test_model_api)
set_tests_properties(model_api PROPERTIES TIMEOUT 900 SKIP_RETURN_CODE 77 LABELS "models")
