# tools/advrec-broker as a process, fed by tools/advrec-produce.
add_test(NAME integration.broker_tool
  COMMAND ${CMAKE_CURRENT_LIST_DIR}/broker_tool.sh
          $<TARGET_FILE:advrec-broker> $<TARGET_FILE:advrec-produce>)
set_tests_properties(integration.broker_tool PROPERTIES LABELS integration TIMEOUT 120)
