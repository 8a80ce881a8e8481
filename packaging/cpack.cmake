# The Debian package `advrec` (CPack's DEB generator), from the "runtime"
# install component: advrecd, the tools, the unit, sysusers.d and tmpfiles.d
# snippets, the config, schemas, man pages and README. The library and its
# headers (component "dev") stay out.
#
#   cmake -S . -B build-deb -DCMAKE_INSTALL_PREFIX=/usr -DADVREC_TESTS=OFF \
#         -DADVREC_SOURCE_SCHEMAS=OFF
#   cmake --build build-deb -j2 && (cd build-deb && cpack -G DEB)
#
# The prefix is compiled into advrecd (the schema directory) and written into
# the unit, so the package is built with the prefix it installs to, /usr;
# ADVREC_SOURCE_SCHEMAS=OFF keeps the build machine's source tree out of the
# binaries.
# Depends: from the binaries' shared libraries (dpkg-shlibdeps, dpkg-dev).
# Maintainer scripts: packaging/debian/ (what they do is said in each).

if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "advrec: CMAKE_INSTALL_PREFIX is ${CMAKE_INSTALL_PREFIX}; "
                 "a .deb for Debian wants -DCMAKE_INSTALL_PREFIX=/usr")
endif()
if(ADVREC_SOURCE_SCHEMAS)
  message(STATUS "advrec: binaries read ${PROJECT_SOURCE_DIR}/schemas when it "
                 "exists; a .deb wants -DADVREC_SOURCE_SCHEMAS=OFF")
endif()

set(ADVREC_SYSUSERS_FILE ${CMAKE_INSTALL_PREFIX}/lib/sysusers.d/advrec.conf)
set(ADVREC_TMPFILES_FILE ${CMAKE_INSTALL_PREFIX}/lib/tmpfiles.d/advrec.conf)
set(ADVREC_DEB_DIR ${PROJECT_BINARY_DIR}/packaging/debian)
configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/postinst.in ${ADVREC_DEB_DIR}/postinst @ONLY)
configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/conffiles.in ${ADVREC_DEB_DIR}/conffiles @ONLY)
configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/prerm ${ADVREC_DEB_DIR}/prerm COPYONLY)
configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/postrm ${ADVREC_DEB_DIR}/postrm COPYONLY)
file(CHMOD ${ADVREC_DEB_DIR}/postinst ${ADVREC_DEB_DIR}/prerm ${ADVREC_DEB_DIR}/postrm
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
                      GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME advrec)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "real-time adversarial recommender daemon for Kafka")
set(CPACK_PACKAGE_DESCRIPTION
    "advrecd consumes click and purchase events (Avro) from Kafka, trains an\n"
    "Adversarial Personalized Ranking model online with its state in RocksDB,\n"
    "and publishes top-N recommendations and anomaly flags back to Kafka.\n"
    "Includes the tools advrec-produce, advrec-gen, advrec-inspect,\n"
    "advrec-eval, advrec-demo and advrec-broker.")
string(REPLACE ";" "" CPACK_PACKAGE_DESCRIPTION "${CPACK_PACKAGE_DESCRIPTION}")
set(CPACK_PACKAGE_CONTACT "advrec maintainers <advrec@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)
set(CPACK_COMPONENTS_ALL runtime)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${ADVREC_DEB_DIR}/postinst ${ADVREC_DEB_DIR}/prerm
    ${ADVREC_DEB_DIR}/postrm ${ADVREC_DEB_DIR}/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
