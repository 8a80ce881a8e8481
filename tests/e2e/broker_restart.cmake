# advrecd through a real broker's outage (label e2e): the test starts a
# broker of its own in a temporary directory (not the fixture `kafka`, which
# other tests share), stops it for 10 s while advrecd runs, starts it again
# on the same directory, and checks advrecd kept running, logged the outage,
# resumed by itself and ends with exact counters and a list for every user
# (tests/e2e/broker_restart.py says what it asserts). Needs the Kafka jars
# and the venv (tests/run.sh fetches both), not the fixture.
add_test(NAME e2e.broker_restart
  COMMAND ${ADVREC_VENV_SH} ${CMAKE_CURRENT_LIST_DIR}/broker_restart.py
          --kafka-sh ${ADVREC_KAFKA_SH} --src ${PROJECT_SOURCE_DIR}
          --advrecd $<TARGET_FILE:advrecd> --gen $<TARGET_FILE:advrec-gen>
          --produce $<TARGET_FILE:advrec-produce>
          --inspect $<TARGET_FILE:advrec-inspect>
          --dump $<TARGET_FILE:state_dump>)
set_tests_properties(e2e.broker_restart PROPERTIES LABELS e2e TIMEOUT 400)
