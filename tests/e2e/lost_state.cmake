# No silent skips (issue 10, point 4) and static membership on restart
# (point 3), on the real broker (label e2e, fixture kafka): advrecd as a
# process, SIGKILLed, its WAL truncated or corrupted, restarted under each
# state.offset.missing policy (tests/e2e/lost_state.py says what each test
# asserts). state_dump comes from durability.cmake.
foreach(t truncate corrupt behind committed static)
  add_test(NAME e2e.lost_state.${t}
    COMMAND ${ADVREC_VENV_SH} ${CMAKE_CURRENT_LIST_DIR}/lost_state.py ${t}
            --kafka-dir ${ADVREC_E2E_KAFKA_DIR} --src ${PROJECT_SOURCE_DIR}
            --advrecd $<TARGET_FILE:advrecd> --gen $<TARGET_FILE:advrec-gen>
            --produce $<TARGET_FILE:advrec-produce>
            --inspect $<TARGET_FILE:advrec-inspect>
            --dump $<TARGET_FILE:state_dump>)
  set_tests_properties(e2e.lost_state.${t} PROPERTIES
    LABELS e2e FIXTURES_REQUIRED kafka TIMEOUT 300)
endforeach()
