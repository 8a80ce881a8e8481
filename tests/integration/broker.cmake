# The embedded broker (lib/broker.c) against librdkafka clients.
add_executable(test_broker ${CMAKE_CURRENT_LIST_DIR}/test_broker.c)
target_include_directories(test_broker PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../unit)
target_link_libraries(test_broker PRIVATE advrec advrec_flags)
add_test(NAME integration.broker COMMAND test_broker)
set_tests_properties(integration.broker PROPERTIES LABELS integration TIMEOUT 180)
