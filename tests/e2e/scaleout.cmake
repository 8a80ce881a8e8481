# e2e.scaleout (tests/e2e/scaleout.py): three advrecd processes in one group
# on the real broker, 12 partitions, topic.changelog: one killed with
# SIGKILL mid-stream, a fourth added; afterwards every user's counters at
# the daemon owning their partition equal the input exactly and every
# user's latest list reflects their last record; stop all, start all:
# nothing applied twice; with topic.model every item's update count is
# the same at every daemon.
add_test(NAME e2e.scaleout
  COMMAND ${ADVREC_VENV_SH} ${CMAKE_CURRENT_LIST_DIR}/scaleout.py
          --kafka-dir ${ADVREC_E2E_KAFKA_DIR} --src ${PROJECT_SOURCE_DIR}
          --advrecd $<TARGET_FILE:advrecd> --gen $<TARGET_FILE:advrec-gen>
          --produce $<TARGET_FILE:advrec-produce> --dump $<TARGET_FILE:state_dump>)
set_tests_properties(e2e.scaleout PROPERTIES
  LABELS e2e FIXTURES_REQUIRED kafka TIMEOUT 600)
