// Writes the vector files into a directory:
//   bazel run //proto/testdata:gen_vectors -- $PWD/proto/testdata
#include <cstdio>
#include <fstream>

#include "proto/testdata/vectors.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: gen_vectors DIR\n");
    return 2;
  }
  for (const auto& [name, text] : raftgrpc::vectors::Generate()) {
    std::ofstream out(std::string(argv[1]) + "/" + name, std::ios::binary);
    out << text;
    if (!out) return 1;
    std::printf("wrote %s\n", name.c_str());
  }
  return 0;
}
