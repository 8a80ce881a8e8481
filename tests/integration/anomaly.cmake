# Anomaly flags end to end: the daemon in-process on its embedded broker, a
# generated stream with click bots and a shilling group; every bot and shill
# flagged on topic.anomalies with
# schema-valid Anomaly records keyed by entity, and the detector rows
# committed to the state store; the group's target stays out of other users'
# lists (against the same stream through a daemon without detectors).
add_executable(test_daemon_anomaly ${CMAKE_CURRENT_LIST_DIR}/test_daemon_anomaly.c)
target_include_directories(test_daemon_anomaly PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../unit)
target_link_libraries(test_daemon_anomaly PRIVATE advrec_tools advrec_flags)
add_test(NAME integration.daemon_anomaly COMMAND test_daemon_anomaly)
set_tests_properties(integration.daemon_anomaly PROPERTIES LABELS integration TIMEOUT 240)
