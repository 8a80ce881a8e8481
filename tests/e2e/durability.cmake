# Durability of advrecd's RocksDB state on the real broker (label e2e,
# fixture kafka): advrecd runs as a separate process, killed with SIGKILL at
# seeded random moments and restarted on the same state dir
# (tests/e2e/durability.py says what each test asserts).
# state_dump: a test-only dump of a whole state dir (exact floats in %a).
add_executable(state_dump ${CMAKE_CURRENT_LIST_DIR}/state_dump.c)
target_link_libraries(state_dump PRIVATE advrec advrec_flags)

foreach(t kill9 bitexact dlq budget)
  add_test(NAME e2e.durability.${t}
    COMMAND ${ADVREC_VENV_SH} ${CMAKE_CURRENT_LIST_DIR}/durability.py ${t}
            --kafka-dir ${ADVREC_E2E_KAFKA_DIR} --src ${PROJECT_SOURCE_DIR}
            --advrecd $<TARGET_FILE:advrecd> --gen $<TARGET_FILE:advrec-gen>
            --produce $<TARGET_FILE:advrec-produce>
            --inspect $<TARGET_FILE:advrec-inspect>
            --dump $<TARGET_FILE:state_dump>)
  set_tests_properties(e2e.durability.${t} PROPERTIES
    LABELS e2e FIXTURES_REQUIRED kafka TIMEOUT 300)
endforeach()
