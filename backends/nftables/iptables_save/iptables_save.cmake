# iptables-save / ip6tables-save text compiled into the Ruleset model (offline input for nodes
# where only text was captured). Include after xt.cmake, then add ${DPI_NFT_IPTABLES_SAVE_SOURCES}
# to dpinspect_nft.
set(DPI_NFT_IPTABLES_SAVE_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/tokenizer.cpp
    ${CMAKE_CURRENT_LIST_DIR}/matches.cpp
    ${CMAKE_CURRENT_LIST_DIR}/targets.cpp
    ${CMAKE_CURRENT_LIST_DIR}/tables.cpp)
