// Fuzz target: request metadata validation (every handler's first step).
// Input: "key:value" lines. Invariants: no crash; OK only with our cluster
// ID and a non-zero sender; a rejection carries a non-OK code.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "testing/fuzz/fuzz_check.h"
#include "transport/internal/metadata.h"
#include "transport/internal/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  std::vector<std::pair<std::string, std::string>> kv;
  size_t pos = 0;
  while (pos < in.size()) {
    size_t nl = in.find('\n', pos);
    if (nl == std::string::npos) nl = in.size();
    const std::string line = in.substr(pos, nl - pos);
    const size_t colon = line.find(':');
    if (colon != std::string::npos) kv.emplace_back(line.substr(0, colon), line.substr(colon + 1));
    pos = nl + 1;
  }
  raftgrpc::ClientMetadata md;
  for (const auto& [k, v] : kv) md.emplace(grpc::string_ref(k), grpc::string_ref(v));
  raftgrpc::TransportOptions opts;
  opts.local_id = 1;
  opts.cluster_id = 0x1000;
  raftgrpc::RequestIdentity id;
  const grpc::Status s = raftgrpc::ValidateIdentity(md, opts, &id);
  if (s.ok()) {
    FUZZ_CHECK(id.from != 0);
    auto it = md.find(raftgrpc::kMetaClusterId);
    FUZZ_CHECK(it != md.end());
    FUZZ_CHECK(raftgrpc::ParseId(std::string(it->second.data(), it->second.size())) ==
               opts.cluster_id);
  }
  return 0;
}
