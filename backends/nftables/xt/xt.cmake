# iptables-nft compat expressions: reading their kernel payloads (nft_compat match/target
# attributes) and the node's ipsets over nfnetlink (libmnl), and decoding them into the model.
# Include from backends/nftables/CMakeLists.txt, then:
#   target_sources(dpinspect_nft PRIVATE ${DPI_NFT_XT_SOURCES})
# (libmnl is linked by backends/nftables/CMakeLists.txt.)
set(DPI_NFT_XT_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/nl_dump.cpp
    ${CMAKE_CURRENT_LIST_DIR}/xt_payloads.cpp
    ${CMAKE_CURRENT_LIST_DIR}/ipset_common.cpp
    ${CMAKE_CURRENT_LIST_DIR}/ipsets.cpp
    ${CMAKE_CURRENT_LIST_DIR}/ipset_save.cpp
    ${CMAKE_CURRENT_LIST_DIR}/ipset_resolve.cpp
    ${CMAKE_CURRENT_LIST_DIR}/decode.cpp
    ${CMAKE_CURRENT_LIST_DIR}/decode_conntrack.cpp
    ${CMAKE_CURRENT_LIST_DIR}/decode_set.cpp
    ${CMAKE_CURRENT_LIST_DIR}/decode_ports.cpp
    ${CMAKE_CURRENT_LIST_DIR}/decode_tcpudp.cpp
    ${CMAKE_CURRENT_LIST_DIR}/decode_statistic.cpp
    ${CMAKE_CURRENT_LIST_DIR}/decode_fib.cpp
    ${CMAKE_CURRENT_LIST_DIR}/decode_misc.cpp
    ${CMAKE_CURRENT_LIST_DIR}/decode_targets.cpp
    ${CMAKE_CURRENT_LIST_DIR}/decode_nat.cpp)
