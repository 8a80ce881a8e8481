# Users follow their partition (daemon_changelog.c): two daemons in-process
# in one group on a mock cluster, each with its own RocksDB state: a
# partition moved to the other is restored from topic.changelog and
# resumes exactly once; after the first leaves, the second's state holds
# every user's exact counters; a restart on an up-to-date state restores
# nothing.
add_executable(test_scaleout ${CMAKE_CURRENT_LIST_DIR}/test_scaleout.c)
target_include_directories(test_scaleout PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../unit)
target_link_libraries(test_scaleout PRIVATE advrec advrec_flags)
add_test(NAME integration.scaleout COMMAND test_scaleout)
set_tests_properties(integration.scaleout PROPERTIES LABELS integration TIMEOUT 300)
