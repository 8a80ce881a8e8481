# Refreshes on a budget (daemon.c: refresh_round, backlog_hold), the daemon
# in-process on a mock cluster, state in memory: lists oldest first; with
# recs.backlog.policy=consume the backlog grows past a round's input, with
# pause it never does, and every list is made either way; the index's
# figures under recs.retrieval=ann (builds, items, lists by retrieval).
add_executable(test_backlog ${CMAKE_CURRENT_LIST_DIR}/test_backlog.c)
target_include_directories(test_backlog PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../unit)
target_link_libraries(test_backlog PRIVATE advrec advrec_flags)
add_test(NAME integration.backlog COMMAND test_backlog)
set_tests_properties(integration.backlog PROPERTIES LABELS integration TIMEOUT 300)
