# Finds gale's dependencies from Debian 12 packages. Each failure names the apt package to install.
find_package(PkgConfig QUIET)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "gale: pkg-config not found. Install it: apt-get install pkg-config")
endif()

macro(gale_require_pkg var module apt)
  pkg_check_modules(${var} QUIET IMPORTED_TARGET ${module})
  if(NOT ${var}_FOUND)
    message(FATAL_ERROR "gale: ${module} not found (pkg-config). Install it: apt-get install ${apt}")
  endif()
endmacro()

gale_require_pkg(ZMQ libzmq libzmq3-dev)
gale_require_pkg(LMDB lmdb liblmdb-dev)
gale_require_pkg(RDKAFKA rdkafka librdkafka-dev)
gale_require_pkg(XXHASH libxxhash libxxhash-dev)
gale_require_pkg(HTTPLIB cpp-httplib libcpp-httplib-dev)
gale_require_pkg(NLOHMANN_JSON nlohmann_json nlohmann-json3-dev)
gale_require_pkg(SIMDJSON simdjson libsimdjson-dev)
gale_require_pkg(HIREDIS hiredis libhiredis-dev)

find_package(cppzmq QUIET CONFIG)
if(NOT cppzmq_FOUND)
  message(FATAL_ERROR "gale: cppzmq not found. Install it: apt-get install cppzmq-dev")
endif()

find_package(CapnProto QUIET CONFIG)
if(NOT CapnProto_FOUND)
  message(FATAL_ERROR "gale: Cap'n Proto not found. Install it: apt-get install capnproto libcapnp-dev")
endif()

find_package(CLI11 QUIET CONFIG)
if(NOT CLI11_FOUND)
  message(FATAL_ERROR "gale: CLI11 not found. Install it: apt-get install libcli11-dev")
endif()

find_package(Threads REQUIRED)

# ZooKeeper's C client (multi-threaded) for cluster mode; Debian ships no pkg-config file for it.
find_path(GALE_ZOOKEEPER_INCLUDE_DIR zookeeper/zookeeper.h)
find_library(GALE_ZOOKEEPER_LIBRARY zookeeper_mt)
if(NOT GALE_ZOOKEEPER_INCLUDE_DIR OR NOT GALE_ZOOKEEPER_LIBRARY)
  message(FATAL_ERROR "gale: ZooKeeper's C client not found. Install it: apt-get install libzookeeper-mt-dev")
endif()
if(NOT TARGET gale_zookeeper_mt)
  add_library(gale_zookeeper_mt UNKNOWN IMPORTED)
  set_target_properties(gale_zookeeper_mt PROPERTIES
    IMPORTED_LOCATION ${GALE_ZOOKEEPER_LIBRARY}
    INTERFACE_INCLUDE_DIRECTORIES ${GALE_ZOOKEEPER_INCLUDE_DIR})
endif()
