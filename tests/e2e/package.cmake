# e2e.package (tests/e2e/package.sh): the .deb built with cpack in a
# temporary directory, installed with dpkg, its layout checked, the installed
# advrecd run as user advrec against the real broker (fixture `kafka`) until
# it publishes a list, then purged; the machine is restored on any exit.
# Needs root (skipped otherwise: exit 77) and changes the machine while it
# runs (/etc/advrec, /usr, the advrec user), hence RUN_SERIAL. About 40 s.
add_test(NAME e2e.package
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/package.sh ${PROJECT_SOURCE_DIR}
          ${ADVREC_E2E_KAFKA_DIR} ${ADVREC_KAFKA_SH})
set_tests_properties(e2e.package PROPERTIES
  LABELS e2e FIXTURES_REQUIRED kafka TIMEOUT 300 RUN_SERIAL TRUE
  SKIP_RETURN_CODE 77)
