# The bench scripts' statistics on made-up figures, the standard library
# only: bench/choose_apr.py's choice rule (the constraint, the tie rule).
add_test(NAME integration.choose_apr_rule
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/choose_apr_rule.py)
set_tests_properties(integration.choose_apr_rule PROPERTIES
  LABELS integration TIMEOUT 60)

# bench/seeds.py's bootstrap interval of the APR/BPR ratio over the seeds.
add_test(NAME integration.seeds_interval
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/integration/seeds_interval.py)
set_tests_properties(integration.seeds_interval PROPERTIES
  LABELS integration TIMEOUT 60)
