# Interop with clients we did not write, on the real broker (fixture `kafka`,
# see kafka.cmake). Helpers shared by the e2e scripts: e2e_common.py.

# e2e.interop.produce: advrec-produce replays a generated CSV fixture (and the
# shared Taobao sample when present) to fresh topics; kafka-python + fastavro
# and Kafka's Java ConsoleConsumer read it back and compare field by field
# with an independent Python parse of the file (interop_produce.py).
add_test(NAME e2e.interop.produce
  COMMAND ${ADVREC_VENV_SH} ${CMAKE_CURRENT_LIST_DIR}/interop_produce.py
          ${ADVREC_E2E_KAFKA_DIR} ${ADVREC_KAFKA_SH}
          $<TARGET_FILE:advrec-produce> $<TARGET_FILE:advrec-gen> ${PROJECT_SOURCE_DIR})
set_tests_properties(e2e.interop.produce PROPERTIES
  LABELS e2e FIXTURES_REQUIRED kafka TIMEOUT 240)

# e2e.interop.fastavro: the reverse direction. kafka-python + fastavro write
# clicks and purchases in the current, an older and a newer schema version,
# plus five malformed records; advrecd (a process, broker.embedded=false,
# -X schema.N for the other versions) must apply every good one (final stats
# line, committed offsets at the end) and put exactly the malformed ones on
# its DLQ with advrec.error headers (interop_fastavro.py).
add_test(NAME e2e.interop.fastavro
  COMMAND ${ADVREC_VENV_SH} ${CMAKE_CURRENT_LIST_DIR}/interop_fastavro.py
          ${ADVREC_E2E_KAFKA_DIR} ${ADVREC_KAFKA_SH}
          $<TARGET_FILE:advrecd> ${PROJECT_SOURCE_DIR})
set_tests_properties(e2e.interop.fastavro PROPERTIES
  LABELS e2e FIXTURES_REQUIRED kafka TIMEOUT 180)
