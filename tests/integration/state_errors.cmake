# advrecd as a process on bad state dirs (embedded broker): missing (created),
# corrupt CURRENT, read-only, full (2 MiB tmpfs; skipped when it cannot be
# mounted): a clear error, a sysexits code, and good state never damaged.
# state_dump is built by tests/e2e/durability.cmake.
add_test(NAME integration.state_errors
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/state_errors.sh
          $<TARGET_FILE:advrecd> $<TARGET_FILE:itest_produce>
          $<TARGET_FILE:state_dump> ${PROJECT_SOURCE_DIR})
set_tests_properties(integration.state_errors PROPERTIES LABELS integration TIMEOUT 240)
