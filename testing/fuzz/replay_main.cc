// main() for corpus replay tests: runs LLVMFuzzerTestOneInput on every file
// of the directories given as arguments (relative to the runfiles root), so
// that the normal test command checks the seed corpora and every crash
// input once committed, without clang.
#include <dirent.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  int files = 0;
  for (int i = 1; i < argc; ++i) {
    std::string dir = argv[i];
    if (const char* src = std::getenv("TEST_SRCDIR")) {
      dir = std::string(src) + "/raft_grpc_transport/" + dir;
    }
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) {
      std::fprintf(stderr, "cannot open corpus %s\n", dir.c_str());
      return 1;
    }
    std::vector<std::string> names;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') names.push_back(e->d_name);
    }
    closedir(d);
    for (const std::string& n : names) {
      std::ifstream in(dir + "/" + n, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      const std::string s = ss.str();
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
      ++files;
    }
  }
  std::printf("replayed %d inputs\n", files);
  return files > 0 ? 0 : 1;
}
