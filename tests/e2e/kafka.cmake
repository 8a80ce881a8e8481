# The real Apache Kafka broker as the ctest fixture `kafka` (label e2e).
#
# e2e.kafka.start (FIXTURES_SETUP kafka) starts one single-node KRaft broker
# (tests/kafka/kafka.sh start --fresh --env) in ${CMAKE_BINARY_DIR}/kafka-e2e;
# e2e.kafka.stop (FIXTURES_CLEANUP kafka) stops it, also after failures.
# An e2e test declares FIXTURES_REQUIRED kafka and finds the broker's address,
# one line host:port, in the file
#
#     ${CMAKE_BINARY_DIR}/kafka-e2e/bootstrap
#
# (advrec_kafka.bootstrap(DIR) reads it; `kafka.sh topics|consume DIR ...`
# use it). Every test creates its own uniquely named topics: the broker is
# shared by the whole ring. With ADVREC_KAFKA_BOOTSTRAP=host:port set in the
# environment, no broker is started and that address is written there instead.
#
# Python test clients run as: tests/py/venv.sh SCRIPT ARGS (pinned venv in the
# cache, tests/py on PYTHONPATH).

# Start-up is a few seconds once the jars are cached; a first run also
# fetches them from Maven Central (tests/run.sh does that beforehand).
add_test(NAME e2e.kafka.start
  COMMAND ${ADVREC_KAFKA_SH} start --fresh --env ${ADVREC_E2E_KAFKA_DIR})
set_tests_properties(e2e.kafka.start PROPERTIES
  LABELS e2e FIXTURES_SETUP kafka TIMEOUT 600)

add_test(NAME e2e.kafka.stop COMMAND ${ADVREC_KAFKA_SH} stop ${ADVREC_E2E_KAFKA_DIR})
set_tests_properties(e2e.kafka.stop PROPERTIES
  LABELS e2e FIXTURES_CLEANUP kafka TIMEOUT 120)

add_test(NAME e2e.kafka.smoke
  COMMAND ${ADVREC_VENV_SH} ${PROJECT_SOURCE_DIR}/tests/e2e/kafka_smoke.py
          ${ADVREC_E2E_KAFKA_DIR} ${ADVREC_KAFKA_SH})
set_tests_properties(e2e.kafka.smoke PROPERTIES
  LABELS e2e FIXTURES_REQUIRED kafka TIMEOUT 300)
