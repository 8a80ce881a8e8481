# advrec-produce against the embedded broker (librdkafka's mock cluster,
# started inside the checker): counts per topic, keys are user ids, values
# decode, partitions match the Java client's murmur2; a dead broker makes
# the tool exit 1. The shared Taobao sample is replayed too when the shared
# data directory is found next to the source tree (../shared/data from the
# main checkout, ../../shared/data from a worktree under wt/).
set(ADVREC_SHARED_DATA "" CACHE PATH "The shared data sets (optional)")
set(_produce_shared "${ADVREC_SHARED_DATA}")
foreach(dir ${PROJECT_SOURCE_DIR}/../shared/data
            ${PROJECT_SOURCE_DIR}/../../shared/data)
  if(NOT _produce_shared AND IS_DIRECTORY ${dir})
    get_filename_component(_produce_shared ${dir} ABSOLUTE)
  endif()
endforeach()
add_executable(produce_check ${CMAKE_CURRENT_LIST_DIR}/produce_check.c)
target_link_libraries(produce_check PRIVATE advrec advrec_flags)
add_test(NAME integration.produce
         COMMAND produce_check $<TARGET_FILE:advrec-produce>
                 ${PROJECT_SOURCE_DIR} ${_produce_shared})
set_tests_properties(integration.produce PROPERTIES
  LABELS integration TIMEOUT 300)
