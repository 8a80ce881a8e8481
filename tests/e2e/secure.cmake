# Security on the wire (issue 13 point 5): a second real broker whose client
# listener is SASL_SSL only, as the ctest fixture `kafka_secure`.
#
# e2e.kafka_secure.start (FIXTURES_SETUP kafka_secure) runs
# `kafka.sh start --fresh --secure ${CMAKE_BINARY_DIR}/kafka-e2e-secure`: Kafka
# 3.9.1 (tests/kafka/pom.xml kafka.secure.version; the other tests run 4.x,
# which refuses the SCRAM of librdkafka < 2.6.1, librdkafka#4895), a test CA
# and broker certificate (openssl), SCRAM-SHA-512 (and PLAIN) for the user
# advrec, DIR/client.properties with the librdkafka settings and DIR/bootstrap
# the SASL_SSL address. Its classpath is fetched by tests/run.sh (`kafka.sh
# fetch --secure`), else by this step (Maven, about 15 s once). It never falls back to ADVREC_KAFKA_BOOTSTRAP: a broker
# that cannot start fails the fixture, and the test with it.
# e2e.kafka_secure.stop (FIXTURES_CLEANUP) stops it, also after failures.
set(ADVREC_E2E_KAFKA_SECURE_DIR ${CMAKE_BINARY_DIR}/kafka-e2e-secure)

add_test(NAME e2e.kafka_secure.start
  COMMAND ${ADVREC_KAFKA_SH} start --fresh --secure ${ADVREC_E2E_KAFKA_SECURE_DIR})
set_tests_properties(e2e.kafka_secure.start PROPERTIES
  LABELS e2e FIXTURES_SETUP kafka_secure TIMEOUT 600)

add_test(NAME e2e.kafka_secure.stop
  COMMAND ${ADVREC_KAFKA_SH} stop ${ADVREC_E2E_KAFKA_SECURE_DIR})
set_tests_properties(e2e.kafka_secure.stop PROPERTIES
  LABELS e2e FIXTURES_CLEANUP kafka_secure TIMEOUT 120)

# e2e.secure.sasl_ssl: advrec-produce -> advrecd -> kafka-python over SASL_SSL,
# every client with SCRAM-SHA-512; --check-config and logs without the
# password, a wrong SCRAM password refused (secure.py's docstring lists every
# assertion). About 10 s.
add_test(NAME e2e.secure.sasl_ssl
  COMMAND ${ADVREC_VENV_SH} ${CMAKE_CURRENT_LIST_DIR}/secure.py
          ${ADVREC_E2E_KAFKA_SECURE_DIR}
          $<TARGET_FILE:advrec-produce> $<TARGET_FILE:advrec-gen>
          $<TARGET_FILE:advrecd> ${PROJECT_SOURCE_DIR})
set_tests_properties(e2e.secure.sasl_ssl PROPERTIES
  LABELS e2e FIXTURES_REQUIRED kafka_secure TIMEOUT 180)
