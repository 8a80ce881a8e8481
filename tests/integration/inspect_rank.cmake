# advrec-inspect shows what the daemon publishes: the daemon in-process on its
# embedded broker with a state.dir, stopped (every user refreshed from the
# final state); for every user, advrec-inspect's list on that state dir
# (lib/rank, like the daemon) equals the last list on the recommendation
# topic: cold users' popularity lists and warm users' model lists alike.
add_executable(test_inspect_rank ${CMAKE_CURRENT_LIST_DIR}/test_inspect_rank.c)
target_include_directories(test_inspect_rank PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../unit)
target_link_libraries(test_inspect_rank PRIVATE advrec_tools advrec_flags)
add_test(NAME integration.inspect_rank
  COMMAND test_inspect_rank $<TARGET_FILE:advrec-inspect>)
set_tests_properties(integration.inspect_rank PROPERTIES LABELS integration TIMEOUT 240)
