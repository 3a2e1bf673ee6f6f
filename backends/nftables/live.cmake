# Live side of the nftables backend: entering a netns, reading interfaces/routes over rtnetlink
# (libmnl) and the ruleset through libnftables. Include from the top-level CMakeLists, then:
#   target_sources(dpinspect_nft PRIVATE ${DPI_NFT_LIVE_SOURCES})
#   target_link_libraries(dpinspect_nft PUBLIC ${DPI_NFT_LIVE_LIBRARIES})
# core/node_info.cpp is not listed here: it belongs to the core library (needs nlohmann_json).

set(DPI_NFT_LIVE_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/netns.cpp
    ${CMAKE_CURRENT_LIST_DIR}/mnl_socket.cpp
    ${CMAKE_CURRENT_LIST_DIR}/netlink_node.cpp
    ${CMAKE_CURRENT_LIST_DIR}/live_ruleset.cpp)

# pkg-config module names (Debian 12: libnftables 1.0.6, libmnl 1.0.4).
set(DPI_NFT_LIVE_PKG_MODULES libnftables libmnl)

find_package(PkgConfig REQUIRED)
pkg_check_modules(DPI_NFT_LIVE REQUIRED IMPORTED_TARGET ${DPI_NFT_LIVE_PKG_MODULES})
# in_netns runs work on a std::thread.
find_package(Threads REQUIRED)

set(DPI_NFT_LIVE_LIBRARIES PkgConfig::DPI_NFT_LIVE Threads::Threads)
