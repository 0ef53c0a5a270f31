// BuildServerCredentials with real certificate files, made by openssl at
// test time (tests/system/certs.py) in a temporary folder.

#include "server/rpc/server_credentials.h"

#include <stdlib.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/status_expectations.h"

namespace jambalancer {
namespace {

class ServerCredentialsTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    char dir[] = "/tmp/jam-credentials-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = new std::string(dir);
    const std::string command = absl::StrCat(
        "/usr/bin/python3 ", JAM_CERTS_SCRIPT, " ", *dir_, " >/dev/null");
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    std::ofstream(Path("plain.txt")) << "no PEM here\n";
    const std::string encrypt =
        absl::StrCat("openssl pkey -in ", Path("server.key"),
                     " -aes128 -passout pass:secret -out ", Path("enc.key"));
    ASSERT_EQ(std::system(encrypt.c_str()), 0) << encrypt;
  }
  static void TearDownTestSuite() {
    std::system(absl::StrCat("rm -rf ", *dir_).c_str());
    delete dir_;
  }
  static std::string Path(const std::string& name) {
    return absl::StrCat(*dir_, "/", name);
  }
  static ServerOptions Tls(const std::string& cert, const std::string& key,
                           const std::string& client_ca = "") {
    ServerOptions options;
    options.tls_cert = cert.empty() ? "" : Path(cert);
    options.tls_key = key.empty() ? "" : Path(key);
    options.tls_client_ca = client_ca.empty() ? "" : Path(client_ca);
    return options;
  }

  static std::string* dir_;
};

std::string* ServerCredentialsTest::dir_ = nullptr;

TEST_F(ServerCredentialsTest, WithoutTlsOptionsIsPlaintext) {
  auto credentials = BuildServerCredentials(ServerOptions());
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_NE(*credentials, nullptr);
}

TEST_F(ServerCredentialsTest, TlsAndMutualTls) {
  auto tls = BuildServerCredentials(Tls("server.crt", "server.key"));
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_NE(*tls, nullptr);
  auto mutual =
      BuildServerCredentials(Tls("server.crt", "server.key", "ca.crt"));
  ASSERT_TRUE(mutual.ok()) << mutual.status();
  EXPECT_NE(*mutual, nullptr);
}

TEST_F(ServerCredentialsTest, MismatchedOptionsNameTheMissingOne) {
  test::ExpectInvalidArgument(
      BuildServerCredentials(Tls("", "server.key")).status(), "tls_key",
      "tls_cert is not");
  test::ExpectInvalidArgument(
      BuildServerCredentials(Tls("server.crt", "")).status(), "tls_cert",
      "tls_key is not");
  test::ExpectInvalidArgument(
      BuildServerCredentials(Tls("", "", "ca.crt")).status(), "tls_client_ca",
      "tls_cert is not");
}

TEST_F(ServerCredentialsTest, BadFilesNameTheOptionAndThePath) {
  test::ExpectInvalidArgument(
      BuildServerCredentials(Tls("missing.crt", "server.key")).status(),
      absl::StrCat("tls_cert \"", Path("missing.crt"), "\""), "No such file");
  test::ExpectInvalidArgument(
      BuildServerCredentials(Tls("server.crt", "plain.txt")).status(),
      absl::StrCat("tls_key \"", Path("plain.txt"), "\""), "not PEM");
  test::ExpectInvalidArgument(
      BuildServerCredentials(Tls("server.crt", "server.key", "missing.crt"))
          .status(),
      "tls_client_ca", "cannot read");
  // A key where the certificate belongs, and another certificate's key.
  test::ExpectInvalidArgument(
      BuildServerCredentials(Tls("server.key", "server.key")).status(),
      "tls_cert", "no PEM certificate");
  test::ExpectInvalidArgument(
      BuildServerCredentials(Tls("server.crt", "client.key")).status(),
      Path("client.key"), "is not the key of tls_cert");
  // An encrypted key: refused, without asking for a passphrase.
  test::ExpectInvalidArgument(
      BuildServerCredentials(Tls("server.crt", "enc.key")).status(),
      Path("enc.key"), "no unencrypted PEM private key");
}

}  // namespace
}  // namespace jambalancer
