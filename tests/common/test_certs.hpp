// tests/common/test_certs.hpp — certificates made at test time (never
// committed: keys and expiry dates do not belong in the repository): a CA and
// member certificates signed by it, as PEM files in a directory, made with
// OpenSSL's API as docs/operations.md makes them with the openssl command
// (EC P-256, extendedKeyUsage serverAuth + clientAuth).
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>
#include <string>

#include "keel/assert.hpp"

namespace keel::test {

class TestCa {
public:
    // A self-signed CA "CN=<name>", written to <dir>/<name>-ca.crt.
    TestCa(std::string dir, std::string name) : dir_(std::move(dir)), name_(std::move(name)) {
        key_.reset(EVP_EC_gen("P-256"));
        KEEL_ASSERT(key_ != nullptr, "EC key");
        cert_.reset(make_cert(name_, key_.get(), nullptr, nullptr, true, 0, 365));
        write_cert(cert_path(), cert_.get());
    }

    std::string cert_path() const { return dir_ + "/" + name_ + "-ca.crt"; }

    struct Member {
        std::string cert_file;
        std::string key_file;
    };
    // A certificate "CN=<name>" signed by this CA, valid from
    // `valid_from_days` (negative: in the past) for `valid_days`.
    Member issue(const std::string& name, long valid_from_days = 0, long valid_days = 30) const {
        std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
        KEEL_ASSERT(key != nullptr, "EC key");
        std::unique_ptr<X509, decltype(&X509_free)> cert(
            make_cert(name, key.get(), cert_.get(), key_.get(), false, valid_from_days, valid_days),
            X509_free);
        Member m{dir_ + "/" + name + ".crt", dir_ + "/" + name + ".key"};
        write_cert(m.cert_file, cert.get());
        FILE* f = std::fopen(m.key_file.c_str(), "w");
        KEEL_ASSERT(
            f && PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1,
            "write key");
        std::fclose(f);
        return m;
    }

private:
    // Signed by (issuer, issuer_key), or self-signed when issuer is null.
    static X509* make_cert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                           bool ca, long valid_from_days, long valid_days) {
        X509* cert = X509_new();
        KEEL_ASSERT(cert != nullptr, "X509_new");
        X509_set_version(cert, 2);
        static long serial = 1;
        ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
        X509_gmtime_adj(X509_getm_notBefore(cert), valid_from_days * 86400 - 60);
        X509_gmtime_adj(X509_getm_notAfter(cert), (valid_from_days + valid_days) * 86400);
        X509_set_pubkey(cert, key);
        X509_NAME* name = X509_get_subject_name(cert);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
        X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, nullptr, nullptr, 0);
        auto add = [&](int nid, const char* value) {
            X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
            KEEL_ASSERT(ext != nullptr, "extension");
            X509_add_ext(cert, ext, -1);
            X509_EXTENSION_free(ext);
        };
        add(NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
        add(NID_subject_key_identifier, "hash");
        if (ca) {
            add(NID_key_usage, "critical,keyCertSign,cRLSign");
        } else {
            add(NID_ext_key_usage, "serverAuth,clientAuth");
        }
        KEEL_ASSERT(X509_sign(cert, issuer_key ? issuer_key : key, EVP_sha256()) > 0, "sign");
        return cert;
    }

    static void write_cert(const std::string& path, X509* cert) {
        FILE* f = std::fopen(path.c_str(), "w");
        KEEL_ASSERT(f && PEM_write_X509(f, cert) == 1, "write certificate");
        std::fclose(f);
    }

    std::string dir_;
    std::string name_;
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key_{nullptr, EVP_PKEY_free};
    std::unique_ptr<X509, decltype(&X509_free)> cert_{nullptr, X509_free};
};

}  // namespace keel::test
