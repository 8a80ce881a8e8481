# bench/choose_apr.py's choice rule (the constraint, the tie rule) on
# made-up candidates; the standard library only.
add_test(NAME integration.choose_apr_rule
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/choose_apr_rule.py)
set_tests_properties(integration.choose_apr_rule PROPERTIES
  LABELS integration TIMEOUT 60)
