# The BPF interpreter against BPF_PROG_TEST_RUN (docs/performance.md, "eBPF policy engine").
add_library(dpinspect_felix_policy STATIC ${CMAKE_CURRENT_LIST_DIR}/felix_policy.cpp)
target_include_directories(dpinspect_felix_policy PUBLIC ${CMAKE_SOURCE_DIR})
target_link_libraries(dpinspect_felix_policy PUBLIC dpinspect_bpfvm)

add_executable(dpinspect_ebpf_vm_bench ${CMAKE_CURRENT_LIST_DIR}/ebpf_vm_bench.cpp)
target_link_libraries(dpinspect_ebpf_vm_bench PRIVATE dpinspect_felix_policy dpinspect_bpfkernel)

# The Calico-scale case through both policy engines (tests/ebpf_agree/randpol.py --scale).
find_package(Threads REQUIRED)
add_executable(dpinspect_ebpf_scale_bench ${CMAKE_CURRENT_LIST_DIR}/ebpf_scale_bench.cpp
  ${CMAKE_SOURCE_DIR}/tests/ebpf_agree/flows.cpp)
target_link_libraries(dpinspect_ebpf_scale_bench PRIVATE dpinspect_ebpf_kernel fmt::fmt Threads::Threads)
