# e2e.registry: advrecd and advrec-produce with a real Schema Registry
# (issue 17): Apicurio Registry 3.0.9 (tests/registry/registry.sh), started
# by the test in a temporary directory of its own because the test pauses it
# (SIGSTOP) to play "registry down", on the shared broker (fixture `kafka`).
# Confluent's Python client (SchemaRegistryClient, AvroSerializer,
# AvroDeserializer) is the independent side: it registers a new Click
# version, reads what advrec-produce --registry wrote and what advrecd
# published. registry.py's docstring lists every assertion. About 32 s.
add_test(NAME e2e.registry
  COMMAND ${ADVREC_VENV_SH} ${CMAKE_CURRENT_LIST_DIR}/registry.py
          ${ADVREC_E2E_KAFKA_DIR} ${ADVREC_REGISTRY_SH}
          $<TARGET_FILE:advrecd> $<TARGET_FILE:advrec-produce>
          $<TARGET_FILE:advrec-gen> ${PROJECT_SOURCE_DIR})
set_tests_properties(e2e.registry PROPERTIES
  LABELS e2e FIXTURES_REQUIRED kafka TIMEOUT 300)
