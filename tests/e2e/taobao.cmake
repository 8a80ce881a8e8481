# e2e.taobao: the Taobao sample (or, without the shared data, a generated
# fixture) produced with advrec-produce to the real broker (fixture `kafka`),
# consumed by advrecd as a process until every record is handled, stopped
# with SIGTERM; every user who clicked must then have a valid recommendation
# on the compacted output topic, read with kafka-python + fastavro
# (taobao.py). About 30 s on the 2-core machine.
add_test(NAME e2e.taobao
  COMMAND ${ADVREC_VENV_SH} ${CMAKE_CURRENT_LIST_DIR}/taobao.py
          ${ADVREC_E2E_KAFKA_DIR} ${ADVREC_KAFKA_SH}
          $<TARGET_FILE:advrec-produce> $<TARGET_FILE:advrec-gen>
          $<TARGET_FILE:advrecd> ${PROJECT_SOURCE_DIR})
set_tests_properties(e2e.taobao PROPERTIES
  LABELS e2e FIXTURES_REQUIRED kafka TIMEOUT 300)
