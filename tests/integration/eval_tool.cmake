# advrec-eval's command line: FGSM on one model, --split-seed.
add_test(NAME integration.eval_tool
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/integration/eval_tool.sh
          $<TARGET_FILE:advrec-eval>)
set_tests_properties(integration.eval_tool PROPERTIES LABELS integration
  TIMEOUT 180)
