# The HTTP endpoint (lib/http): advrecd as a process with http.listen on
# 127.0.0.1:0, scraped by python3's urllib; the families checked against the
# stream produced (malformed records included) and the text validated by
# promtool (required: a missing promtool fails the test).
add_test(NAME integration.http_metrics
  COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/http_metrics.py
          $<TARGET_FILE:advrecd> $<TARGET_FILE:itest_produce> ${PROJECT_SOURCE_DIR})
set_tests_properties(integration.http_metrics PROPERTIES LABELS integration TIMEOUT 240)
