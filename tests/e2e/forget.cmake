# e2e.forget: a forget request on the real broker with kafka-python and
# fastavro (tests/e2e/forget.py): the user's list tombstoned on the
# recommendations topic, their rows gone from the state, a malformed
# request dead-lettered bad-control, the metrics counting it.
add_test(NAME e2e.forget
  COMMAND ${ADVREC_VENV_SH} ${CMAKE_CURRENT_LIST_DIR}/forget.py
          --kafka-dir ${ADVREC_E2E_KAFKA_DIR} --src ${PROJECT_SOURCE_DIR}
          --advrecd $<TARGET_FILE:advrecd> --inspect $<TARGET_FILE:advrec-inspect>)
set_tests_properties(e2e.forget PROPERTIES
  LABELS e2e FIXTURES_REQUIRED kafka TIMEOUT 240)
