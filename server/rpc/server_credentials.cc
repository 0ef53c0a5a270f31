#include "server/rpc/server_credentials.h"

#include <grpc/grpc_security_constants.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/util/pem_file.h"

namespace jambalancer {
namespace {

// OpenSSL's passphrase callback: none (its default would prompt on the
// terminal for an encrypted key).
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
  return 0;
}

// OK if `cert_pem` starts with a certificate whose public key is that of
// `key_pem`. gRPC would only fail to listen, without saying why.
absl::Status CheckKeyPair(const std::string& cert_pem,
                          const std::string& key_pem,
                          const ServerOptions& options) {
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(
      BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())),
      &BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(cert_bio.get(), nullptr, NoPassphrase, nullptr),
      &X509_free);
  if (cert == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tls_cert \"", options.tls_cert, "\": no PEM certificate in it"));
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
      BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())),
      &BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr),
      &EVP_PKEY_free);
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("tls_key \"", options.tls_key,
                     "\": no unencrypted PEM private key in it"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "tls_key \"", options.tls_key, "\" is not the key of tls_cert \"",
        options.tls_cert, "\""));
  }
  ERR_clear_error();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> BuildServerCredentials(
    const ServerOptions& options) {
  if (options.tls_cert.empty()) {
    if (!options.tls_key.empty()) {
      return absl::InvalidArgumentError(
          "tls_key is set but tls_cert is not: give both for TLS");
    }
    if (!options.tls_client_ca.empty()) {
      return absl::InvalidArgumentError(
          "tls_client_ca is set but tls_cert is not: mutual TLS needs the "
          "server's certificate and key too");
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert is set but tls_key is not: give both for TLS");
  }
  absl::StatusOr<std::string> cert = ReadPemFile("tls_cert", options.tls_cert);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPemFile("tls_key", options.tls_key);
  if (!key.ok()) return key.status();
  if (absl::Status status = CheckKeyPair(*cert, *key, options); !status.ok()) {
    return status;
  }

  grpc::SslServerCredentialsOptions ssl(
      GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  ssl.pem_key_cert_pairs.push_back({*std::move(key), *std::move(cert)});
  if (!options.tls_client_ca.empty()) {
    absl::StatusOr<std::string> client_ca =
        ReadPemFile("tls_client_ca", options.tls_client_ca);
    if (!client_ca.ok()) return client_ca.status();
    ssl.pem_root_certs = *std::move(client_ca);
    ssl.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace jambalancer
