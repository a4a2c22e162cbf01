#include "peer/url_picker.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "peer/mutex.h"

namespace raftgrpc {
namespace {

absl::string_view StripScheme(absl::string_view url) {
  for (absl::string_view scheme : {"http://", "https://"}) {
    if (absl::StartsWith(url, scheme)) return url.substr(scheme.size());
  }
  return absl::string_view();
}

absl::Status CheckUrl(const std::string& url) {
  absl::string_view hostport = StripScheme(url);
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("invalid peer URL \"", url, "\": ", why));
  };
  if (hostport.empty()) return bad("scheme must be http or https");
  if (hostport.find_first_of("/?#@") != absl::string_view::npos) {
    return bad("must be scheme://host:port without path, query or user info");
  }
  size_t colon = hostport.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) return bad("missing host:port");
  absl::string_view host = hostport.substr(0, colon);
  if (host.front() == '[' && host.back() != ']') return bad("unterminated IPv6 literal");
  if (host.front() != '[' && host.find(':') != absl::string_view::npos) {
    return bad("IPv6 hosts must be in brackets");
  }
  int port = 0;
  if (!absl::SimpleAtoi(hostport.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return bad("port must be 1-65535");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ValidatePeerUrls(const std::vector<std::string>& urls) {
  if (urls.empty()) return absl::InvalidArgumentError("no peer URLs given");
  for (const auto& u : urls) {
    absl::Status s = CheckUrl(u);
    if (!s.ok()) return s;
  }
  std::vector<std::string> sorted = urls;
  std::sort(sorted.begin(), sorted.end());
  return sorted;
}

std::string GrpcTarget(const std::string& url) { return std::string(StripScheme(url)); }

UrlPicker::UrlPicker(std::vector<std::string> urls) { Update(std::move(urls)); }

std::string UrlPicker::Pick() const {
  MutexLock l(&mu_);
  return urls_.empty() ? std::string() : urls_[picked_];
}

void UrlPicker::Unreachable(const std::string& url) {
  MutexLock l(&mu_);
  if (!urls_.empty() && urls_[picked_] == url) picked_ = (picked_ + 1) % urls_.size();
}

void UrlPicker::Update(std::vector<std::string> urls) {
  std::sort(urls.begin(), urls.end());
  MutexLock l(&mu_);
  urls_ = std::move(urls);
  picked_ = 0;
}

std::vector<std::string> UrlPicker::urls() const {
  MutexLock l(&mu_);
  return urls_;
}

}  // namespace raftgrpc
