# advrecd under systemd (issue 13): the unit's sandbox rating, the sd_notify
# protocol, SIGHUP reload, and the daemon under the unit's restrictions.
# systemd_security: the unit as configured into the build directory, rated
# by `systemd-analyze security --offline=yes`: at most 2.0, no warnings.
add_test(NAME integration.systemd_security
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/systemd_security.sh
          ${PROJECT_BINARY_DIR}/advrecd.service 2.0)
set_tests_properties(integration.systemd_security PROPERTIES
  LABELS integration TIMEOUT 60 SKIP_RETURN_CODE 77)
# systemd_notify: advrecd sends READY=1, WATCHDOG=1 (half of WATCHDOG_USEC,
# from the processing loop), STATUS= and STOPPING=1 to a NOTIFY_SOCKET the
# test binds, in that order; no WATCHDOG=1 without WATCHDOG_USEC.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME integration.systemd_notify
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/systemd_notify.py
            $<TARGET_FILE:advrecd> $<TARGET_FILE:itest_produce> ${PROJECT_SOURCE_DIR})
  set_tests_properties(integration.systemd_notify PROPERTIES
    LABELS integration TIMEOUT 180 SKIP_RETURN_CODE 77)
endif()
# daemon_reload: SIGHUP re-reads the config file and the -X overrides: a
# live key applied and logged, a restart-only key refused by name, a file
# that does not parse refused whole; the daemon consumes on and exits 0.
add_test(NAME integration.daemon_reload
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/daemon_reload.sh
          $<TARGET_FILE:advrecd> $<TARGET_FILE:itest_produce>)
set_tests_properties(integration.daemon_reload PROPERTIES LABELS integration TIMEOUT 180)
# systemd_sandbox: advrecd under what of the unit's sandbox can be set up
# without systemd (bubblewrap, setpriv, umask, PR_SET_MDWE; the script's
# header lists what is and is not reproduced): consumes a stream, exits 0.
add_test(NAME integration.systemd_sandbox
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/systemd_sandbox.sh
          $<TARGET_FILE:advrecd> $<TARGET_FILE:itest_produce> ${PROJECT_SOURCE_DIR})
set_tests_properties(integration.systemd_sandbox PROPERTIES
  LABELS integration TIMEOUT 180 SKIP_RETURN_CODE 77)
