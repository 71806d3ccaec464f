#include "counterd/http/listen_address.h"

#include <gtest/gtest.h>

namespace counterd::http {
namespace {

TEST(ParseListenAddressTest, Ipv4AndIpv6) {
  EXPECT_EQ(*ParseListenAddress("0.0.0.0:8080"),
            (ListenAddress{"0.0.0.0", 8080}));
  EXPECT_EQ(*ParseListenAddress("127.0.0.1:0"),
            (ListenAddress{"127.0.0.1", 0}));
  EXPECT_EQ(*ParseListenAddress("[::1]:9"), (ListenAddress{"::1", 9}));
  EXPECT_EQ(*ParseListenAddress("localhost:80"),
            (ListenAddress{"127.0.0.1", 80}));
}

TEST(ParseListenAddressTest, RejectsBadInput) {
  for (const char* bad :
       {"nonsense", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999",
        "127.0.0.1:-1", "127.0.0.1:8x", "example.com:80", "::1:80", ":80",
        "[::1]:", "1.2.3:80"}) {
    const auto r = ParseListenAddress(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
    }
  }
}

TEST(ListenAddressTest, ToStringBracketsIpv6) {
  EXPECT_EQ((ListenAddress{"127.0.0.1", 80}).ToString(), "127.0.0.1:80");
  EXPECT_EQ((ListenAddress{"::1", 80}).ToString(), "[::1]:80");
}

TEST(ListenAddressTest, WildcardsConnectToLoopback) {
  EXPECT_EQ((ListenAddress{"0.0.0.0", 1}).ForConnecting(),
            (ListenAddress{"127.0.0.1", 1}));
  EXPECT_EQ((ListenAddress{"::", 1}).ForConnecting(),
            (ListenAddress{"::1", 1}));
  EXPECT_EQ((ListenAddress{"10.0.0.5", 1}).ForConnecting(),
            (ListenAddress{"10.0.0.5", 1}));
}

}  // namespace
}  // namespace counterd::http
