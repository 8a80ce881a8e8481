# Broker faults on the embedded broker (docs/RELIABILITY.md, "Broker
# faults"): the daemon in-process against a three-broker mock cluster of the
# test's own, fed a generated stream with malformed records while Produce,
# Fetch and OffsetCommit requests fail, input partitions change leader,
# answers come 500 ms late and every broker is down for 3 s. The daemon keeps
# running, counts the errors (advrec_kafka_errors_total) and logs them, its
# counters end exact, every malformed record reaches the DLQ and every user
# gets a list.
add_executable(test_broker_faults ${CMAKE_CURRENT_LIST_DIR}/test_broker_faults.c)
target_include_directories(test_broker_faults PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../unit)
target_link_libraries(test_broker_faults PRIVATE advrec_tools advrec_flags)
add_test(NAME integration.broker_faults COMMAND test_broker_faults)
set_tests_properties(integration.broker_faults PROPERTIES LABELS integration TIMEOUT 300)
