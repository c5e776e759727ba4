#include "util.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace qf {

std::vector<int> ParseCpuList(const std::string& list) {
  std::vector<int> cpus;
  std::stringstream ss(list);
  std::string part;
  while (std::getline(ss, part, ',')) {
    while (!part.empty() && (part.back() == '\n' || part.back() == ' ')) part.pop_back();
    if (part.empty()) continue;
    char* end = nullptr;
    long lo = strtol(part.c_str(), &end, 10);
    long hi = lo;
    if (end == part.c_str()) return {};
    if (*end == '-') {
      const char* rest = end + 1;
      hi = strtol(rest, &end, 10);
      if (end == rest) return {};
    }
    if (*end != '\0' || lo < 0 || hi < lo) return {};
    for (long c = lo; c <= hi; c++) cpus.push_back(static_cast<int>(c));
  }
  return cpus;
}

std::vector<int> OnlineCpus() {
  std::ifstream f("/sys/devices/system/cpu/online");
  std::string line;
  std::getline(f, line);
  return ParseCpuList(line);
}

}  // namespace qf
