// TlsContextProvider: loading, refusing and reloading certificate files.
#include "transport/tls_context.h"

#include <chrono>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "test_certificates.h"

namespace counterd::http {
namespace {

namespace fs = std::filesystem;
using counterd::testing::MakeTestCertificate;
using counterd::testing::TestCertificate;
using counterd::testing::WriteTestFile;
using Reload = TlsContextProvider::Reload;

class TlsContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() /
        ("counterd-tls-" +
         std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    cert_ = (dir_ / "tls.crt").string();
    key_ = (dir_ / "tls.key").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const TestCertificate& c) {
    WriteTestFile(cert_, c.cert_pem);
    WriteTestFile(key_, c.key_pem);
  }

  // Polls as the server does, until a call reports something other than
  // kUnchanged; a change takes two calls (the first sees it settling).
  Reload Poll(Status* error) {
    for (int i = 0; i < 3; ++i) {
      const Reload r = provider_->ReloadIfChanged(error);
      if (r != Reload::kUnchanged) return r;
    }
    return Reload::kUnchanged;
  }

  fs::path dir_;
  std::string cert_;
  std::string key_;
  std::unique_ptr<TlsContextProvider> provider_;
};

TEST_F(TlsContextTest, LoadsAMatchingPairAndDescribesIt) {
  Write(MakeTestCertificate("first", 42));
  auto provider = TlsContextProvider::Create({cert_, key_, ""});
  ASSERT_TRUE(provider) << provider.error().ToString();
  const TlsCertificateInfo info = (*provider)->CurrentInfo();
  EXPECT_EQ(info.subject, "/CN=first");
  EXPECT_EQ(info.serial, "2A");
  const auto left = info.not_after - std::chrono::system_clock::now();
  EXPECT_GT(left, std::chrono::hours(23));
  EXPECT_LE(left, std::chrono::hours(24));
  EXPECT_TRUE((*provider)->Current());
}

TEST_F(TlsContextTest, RefusesAKeyThatDoesNotMatch) {
  WriteTestFile(cert_, MakeTestCertificate("a", 1).cert_pem);
  WriteTestFile(key_, MakeTestCertificate("b", 2).key_pem);
  auto provider = TlsContextProvider::Create({cert_, key_, ""});
  ASSERT_FALSE(provider);
  EXPECT_EQ(provider.error().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(provider.error().message().find("does not match"),
            std::string::npos)
      << provider.error().message();
}

TEST_F(TlsContextTest, RefusesMissingAndNonPemFiles) {
  auto missing = TlsContextProvider::Create({cert_, key_, ""});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find(cert_), std::string::npos);

  WriteTestFile(cert_, "not a certificate\n");
  WriteTestFile(key_, MakeTestCertificate("a", 1).key_pem);
  auto garbage = TlsContextProvider::Create({cert_, key_, ""});
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.error().message().find(cert_), std::string::npos);

  Write(MakeTestCertificate("a", 1));
  const std::string ca = (dir_ / "ca.crt").string();
  WriteTestFile(ca, "nothing here\n");
  auto bad_ca = TlsContextProvider::Create({cert_, key_, ca});
  ASSERT_FALSE(bad_ca);
  EXPECT_NE(bad_ca.error().message().find(ca), std::string::npos);
}

TEST_F(TlsContextTest, ReloadsAChangedPairOnceItHasSettled) {
  Write(MakeTestCertificate("first", 1));
  auto created = TlsContextProvider::Create({cert_, key_, ""});
  ASSERT_TRUE(created);
  provider_ = std::move(*created);
  const auto first = provider_->Current();
  Status error;
  EXPECT_EQ(provider_->ReloadIfChanged(&error), Reload::kUnchanged);

  Write(MakeTestCertificate("second", 2));
  EXPECT_EQ(provider_->ReloadIfChanged(&error), Reload::kUnchanged)
      << "loaded before it settled";
  EXPECT_EQ(provider_->ReloadIfChanged(&error), Reload::kReloaded);
  EXPECT_NE(provider_->Current(), first);
  EXPECT_EQ(provider_->CurrentInfo().subject, "/CN=second");
  EXPECT_EQ(provider_->ReloadIfChanged(&error), Reload::kUnchanged);
}

// A half-written pair (the certificate already new, its key not yet) is
// never loaded when the rest arrives before the next poll.
TEST_F(TlsContextTest, APairWrittenBetweenPollsIsLoadedWhole) {
  Write(MakeTestCertificate("first", 1));
  auto created = TlsContextProvider::Create({cert_, key_, ""});
  ASSERT_TRUE(created);
  provider_ = std::move(*created);
  const TestCertificate next = MakeTestCertificate("second", 2);
  Status error;
  WriteTestFile(cert_, next.cert_pem);
  EXPECT_EQ(provider_->ReloadIfChanged(&error), Reload::kUnchanged);
  WriteTestFile(key_, next.key_pem);
  EXPECT_EQ(provider_->ReloadIfChanged(&error), Reload::kUnchanged);
  EXPECT_EQ(provider_->ReloadIfChanged(&error), Reload::kReloaded)
      << error.ToString();
}

TEST_F(TlsContextTest, ABrokenPairIsRefusedOnceAndTheOldOneStays) {
  Write(MakeTestCertificate("first", 1));
  auto created = TlsContextProvider::Create({cert_, key_, ""});
  ASSERT_TRUE(created);
  provider_ = std::move(*created);
  const auto first = provider_->Current();

  WriteTestFile(key_, "-----BEGIN PRIVATE KEY-----\ngarbage\n");
  Status error;
  EXPECT_EQ(Poll(&error), Reload::kFailed);
  EXPECT_NE(error.message().find(key_), std::string::npos) << error.message();
  EXPECT_EQ(provider_->Current(), first);
  EXPECT_EQ(provider_->CurrentInfo().subject, "/CN=first");
  EXPECT_EQ(Poll(&error), Reload::kUnchanged) << "refused twice";

  fs::remove(key_);
  EXPECT_EQ(Poll(&error), Reload::kFailed);
  EXPECT_EQ(Poll(&error), Reload::kUnchanged);
  EXPECT_EQ(provider_->Current(), first);
}

// Kubernetes updates a mounted Secret by pointing "..data" at a new
// directory; the files are symlinks through it.
TEST_F(TlsContextTest, FollowsADataSymlinkSwap) {
  const fs::path secret = dir_ / "secret";
  fs::create_directories(secret / "..v1");
  fs::create_directories(secret / "..v2");
  const TestCertificate v1 = MakeTestCertificate("v1", 1);
  const TestCertificate v2 = MakeTestCertificate("v2", 2);
  WriteTestFile((secret / "..v1" / "tls.crt").string(), v1.cert_pem);
  WriteTestFile((secret / "..v1" / "tls.key").string(), v1.key_pem);
  WriteTestFile((secret / "..v2" / "tls.crt").string(), v2.cert_pem);
  WriteTestFile((secret / "..v2" / "tls.key").string(), v2.key_pem);
  fs::create_directory_symlink("..v1", secret / "..data");
  fs::create_symlink("..data/tls.crt", secret / "tls.crt");
  fs::create_symlink("..data/tls.key", secret / "tls.key");

  auto created = TlsContextProvider::Create(
      {(secret / "tls.crt").string(), (secret / "tls.key").string(), ""});
  ASSERT_TRUE(created) << created.error().ToString();
  provider_ = std::move(*created);
  EXPECT_EQ(provider_->CurrentInfo().subject, "/CN=v1");

  fs::create_directory_symlink("..v2", secret / "..data_tmp");
  fs::rename(secret / "..data_tmp", secret / "..data");  // atomic swap
  Status error;
  EXPECT_EQ(Poll(&error), Reload::kReloaded) << error.ToString();
  EXPECT_EQ(provider_->CurrentInfo().subject, "/CN=v2");
}

TEST_F(TlsContextTest, ClientCaIsLoaded) {
  const TestCertificate ca = MakeTestCertificate("ca", 9);
  Write(MakeTestCertificate("server", 10, &ca));
  const std::string ca_file = (dir_ / "ca.crt").string();
  WriteTestFile(ca_file, ca.cert_pem);
  auto provider = TlsContextProvider::Create({cert_, key_, ca_file});
  ASSERT_TRUE(provider) << provider.error().ToString();
}

}  // namespace
}  // namespace counterd::http
