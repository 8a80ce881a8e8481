# advrecd under systemd (issue 13): the unit's sandbox rating, the sd_notify
# protocol, SIGHUP reload, and the daemon under the unit's restrictions.
# systemd_security: the unit as configured into the build directory, rated
# by `systemd-analyze security --offline=yes`: at most 2.0, no warnings.
add_test(NAME integration.systemd_security
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/systemd_security.sh
          ${PROJECT_BINARY_DIR}/advrecd.service 2.0)
set_tests_properties(integration.systemd_security PROPERTIES
  LABELS integration TIMEOUT 60 SKIP_RETURN_CODE 77)
