#pragma once

#include <string>
#include <vector>

namespace qf {

// "0-3,8,10-11" -> {0,1,2,3,8,10,11}; empty on a malformed list.
std::vector<int> ParseCpuList(const std::string& list);
// /sys/devices/system/cpu/online
std::vector<int> OnlineCpus();

}  // namespace qf
