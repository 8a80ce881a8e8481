# lib/outbox's deliveries against the embedded broker with a lib/kafka
# producer and a temporary RocksDB store: committed records produced after a
# restart in seq order with their headers, a too-large dead letter delivered
# as a truncated copy with an advrec.truncated header, delivered records
# deleted in the next commit, lists owed until delivered and owed once.
add_executable(test_outbox_deliveries ${CMAKE_CURRENT_LIST_DIR}/test_outbox.c)
target_include_directories(test_outbox_deliveries PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../unit)
target_link_libraries(test_outbox_deliveries PRIVATE advrec advrec_flags)
add_test(NAME integration.outbox COMMAND test_outbox_deliveries)
set_tests_properties(integration.outbox PROPERTIES LABELS integration TIMEOUT 180)
