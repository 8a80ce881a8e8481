# Anomaly flags at-least-once across a crash: advrecd (a child process) on a
# mock cluster whose anomalies partition has no leader commits flags it
# cannot deliver and is killed with SIGKILL; a daemon restarted on the same
# state.dir produces every one of them, byte for byte, and drops them from
# the state once delivered.
add_executable(test_flag_durability ${CMAKE_CURRENT_LIST_DIR}/test_flag_durability.c)
target_include_directories(test_flag_durability PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../unit)
target_link_libraries(test_flag_durability PRIVATE advrec_tools advrec_flags)
add_test(NAME integration.flag_durability
  COMMAND test_flag_durability $<TARGET_FILE:advrecd>)
set_tests_properties(integration.flag_durability PROPERTIES LABELS integration TIMEOUT 240)
