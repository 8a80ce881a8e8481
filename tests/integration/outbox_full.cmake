# A full outbox (outputs unacknowledged past its bound) pauses consumption
# but for one round every half kafka.max.poll.interval.ms: the daemon
# in-process on a mock cluster whose dead-letter partition has no leader,
# 17,000 malformed records; no partition is revoked while it stays full,
# and every dead letter is delivered once the leader is back.
add_executable(test_outbox_full ${CMAKE_CURRENT_LIST_DIR}/test_outbox_full.c)
target_include_directories(test_outbox_full PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../unit)
target_link_libraries(test_outbox_full PRIVATE advrec advrec_flags)
add_test(NAME integration.outbox_full COMMAND test_outbox_full)
set_tests_properties(integration.outbox_full PROPERTIES LABELS integration TIMEOUT 300)
