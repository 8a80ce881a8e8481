# The advrecd command line against the real binary: --version, --help,
# --check-config on the shipped conf, --dump-config, and the sysexits codes
# and file:line messages of bad arguments and bad configs.
add_test(NAME integration.cli
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/cli.sh
          $<TARGET_FILE:advrecd> ${PROJECT_SOURCE_DIR})
set_tests_properties(integration.cli PROPERTIES LABELS integration TIMEOUT 60)
