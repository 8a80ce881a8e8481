# Users leaving the state (daemon_expire.c), the daemon in-process on a mock
# cluster with a RocksDB state: a full user table makes room (no dead
# letters, active users keep every event; with and without a memory
# budget), a forget request on topic.control deletes a user once and
# tombstones their list, state.user.ttl expires users by event time.
add_executable(test_expire ${CMAKE_CURRENT_LIST_DIR}/test_expire.c)
target_include_directories(test_expire PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../unit)
target_link_libraries(test_expire PRIVATE advrec advrec_flags)
add_test(NAME integration.expire COMMAND test_expire)
set_tests_properties(integration.expire PROPERTIES LABELS integration TIMEOUT 300)
