/* webpush_ece.c -- lib/webpush.h's message encryption (RFC 8291 3.3-3.4):
 * ECDH between a fresh P-256 key and the device's p256dh, the device's
 * auth secret mixed in by HKDF-SHA256, then one aes128gcm record of RFC
 * 8188 (header salt || rs || idlen || keyid, then AES-128-GCM over the
 * plaintext and the last-record delimiter 0x02).  OpenSSL does ECDH, HKDF
 * and GCM; this file only strings them together. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "webpush.h"
#include "webpush_int.h"

#define KEY_INFO "WebPush: info"         /* followed by a NUL */
#define CEK_INFO "Content-Encoding: aes128gcm"
#define NONCE_INFO "Content-Encoding: nonce"

/* HKDF-SHA256 (RFC 5869), extract and expand */
static int hkdf(const unsigned char *salt, size_t sl, const unsigned char *ikm, size_t il,
                const unsigned char *info, size_t nl, unsigned char *out, size_t ol)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *c = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM p[5];
    int rc;

    p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, sl);
    p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, il);
    p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, nl);
    p[4] = OSSL_PARAM_construct_end();
    rc = c && EVP_KDF_derive(c, out, ol, p) > 0 ? 0 : -1;
    EVP_KDF_CTX_free(c);
    EVP_KDF_free(kdf);
    return rc;
}

static int ecdh(EVP_PKEY *mine, EVP_PKEY *peer, unsigned char secret[32])
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, mine, NULL);
    size_t n = 32;
    int rc = c && EVP_PKEY_derive_init(c) > 0 && EVP_PKEY_derive_set_peer(c, peer) > 0 &&
                     EVP_PKEY_derive(c, secret, &n) > 0 && n == 32
                 ? 0
                 : -1;
    EVP_PKEY_CTX_free(c);
    return rc;
}

static int gcm_seal(const unsigned char key[16], const unsigned char nonce[12],
                    const unsigned char *in, size_t len, unsigned char *out)
{
    static const unsigned char last = 0x02;     /* delimiter of the last record, no padding */
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0, rc = -1;
    size_t o = 0;

    if (c == NULL || EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, key, nonce) <= 0)
        goto out;
    if (len > 0) {
        if (EVP_EncryptUpdate(c, out, &n, in, (int)len) <= 0)
            goto out;
        o += (size_t)n;
    }
    if (EVP_EncryptUpdate(c, out + o, &n, &last, 1) <= 0)
        goto out;
    o += (size_t)n;
    if (EVP_EncryptFinal_ex(c, out + o, &n) <= 0)
        goto out;
    o += (size_t)n;
    if (o == len + 1 && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + o) > 0)
        rc = 0;
out:
    EVP_CIPHER_CTX_free(c);
    return rc;
}

/* the record for as_key (its public point as_pub) into out */
static int seal(EVP_PKEY *as_key, const unsigned char as_pub[PL_WP_POINT_LEN],
                const char *p256dh, const char *auth, const void *plaintext, size_t len,
                uint32_t rs, const unsigned char salt[PL_WP_SALT_LEN], unsigned char *out,
                char *err, size_t errlen)
{
    unsigned char ua_pub[PL_WP_POINT_LEN + 1], secret[PL_WP_AUTH_LEN + 1];
    unsigned char shared[32], ikm[32], cek[16], nonce[12];
    unsigned char info[sizeof(KEY_INFO) + 2 * PL_WP_POINT_LEN];
    EVP_PKEY *ua = NULL;
    int rc = -1;

    if (pl_b64url_decode(p256dh, strlen(p256dh), ua_pub, sizeof(ua_pub)) != PL_WP_POINT_LEN ||
        (ua = pl_wp_point_key(ua_pub, NULL)) == NULL) {
        snprintf(err, errlen, "%s", pl_webpush_p256dh_check(p256dh) ? pl_webpush_p256dh_check(p256dh)
                                                                   : "p256dh: unusable");
        goto out;
    }
    if (pl_b64url_decode(auth, strlen(auth), secret, sizeof(secret)) != PL_WP_AUTH_LEN) {
        snprintf(err, errlen, "%s", pl_webpush_auth_check(auth));
        goto out;
    }
    /* key_info = "WebPush: info" 0x00 || ua_public || as_public */
    memcpy(info, KEY_INFO, sizeof(KEY_INFO));
    memcpy(info + sizeof(KEY_INFO), ua_pub, PL_WP_POINT_LEN);
    memcpy(info + sizeof(KEY_INFO) + PL_WP_POINT_LEN, as_pub, PL_WP_POINT_LEN);
    if (ecdh(as_key, ua, shared) != 0 ||
        hkdf(secret, PL_WP_AUTH_LEN, shared, sizeof(shared), info, sizeof(info), ikm,
             sizeof(ikm)) != 0 ||
        hkdf(salt, PL_WP_SALT_LEN, ikm, sizeof(ikm), (const unsigned char *)CEK_INFO,
             sizeof(CEK_INFO), cek, sizeof(cek)) != 0 ||
        hkdf(salt, PL_WP_SALT_LEN, ikm, sizeof(ikm), (const unsigned char *)NONCE_INFO,
             sizeof(NONCE_INFO), nonce, sizeof(nonce)) != 0) {
        snprintf(err, errlen, "key agreement failed");
        goto out;
    }
    /* the header: salt, rs (4 bytes, network order), idlen, keyid */
    memcpy(out, salt, PL_WP_SALT_LEN);
    out[16] = (unsigned char)(rs >> 24);
    out[17] = (unsigned char)(rs >> 16);
    out[18] = (unsigned char)(rs >> 8);
    out[19] = (unsigned char)rs;
    out[20] = PL_WP_POINT_LEN;
    memcpy(out + 21, as_pub, PL_WP_POINT_LEN);
    if (gcm_seal(cek, nonce, plaintext, len, out + PL_WP_HEADER_LEN) != 0) {
        snprintf(err, errlen, "AES-128-GCM failed");
        goto out;
    }
    rc = 0;
out:
    EVP_PKEY_free(ua);
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(shared, sizeof(shared));
    OPENSSL_cleanse(ikm, sizeof(ikm));
    OPENSSL_cleanse(cek, sizeof(cek));
    OPENSSL_cleanse(nonce, sizeof(nonce));
    ERR_clear_error();
    return rc;
}

/* the sizes: 0, or -1 with err */
static int sizes_ok(size_t len, uint32_t *rs, size_t outsize, char *err, size_t errlen)
{
    if (*rs == 0)
        *rs = PL_WP_RS_DEFAULT;
    if (len > PL_WP_PLAIN_MAX) {
        snprintf(err, errlen, "payload of %zu bytes: at most %d", len, PL_WP_PLAIN_MAX);
        return -1;
    }
    if (*rs < len + 18) {
        snprintf(err, errlen, "record size %u: one record of %zu bytes needs at least %zu",
                 (unsigned)*rs, len, len + 18);
        return -1;
    }
    if (outsize < len + PL_WP_OVERHEAD) {
        snprintf(err, errlen, "output buffer of %zu bytes: %zu needed", outsize,
                 len + PL_WP_OVERHEAD);
        return -1;
    }
    return 0;
}

int pl_webpush_encrypt_with(const char *p256dh, const char *auth, const void *plaintext,
                            size_t len, uint32_t rs, const unsigned char salt[PL_WP_SALT_LEN],
                            const unsigned char as_priv[32],
                            const unsigned char as_pub[PL_WP_POINT_LEN], unsigned char *out,
                            size_t outsize, size_t *outlen, char *err, size_t errlen)
{
    EVP_PKEY *as;
    int rc;

    if (sizes_ok(len, &rs, outsize, err, errlen) != 0)
        return -1;
    if ((as = pl_wp_point_key(as_pub, as_priv)) == NULL) {
        snprintf(err, errlen, "the application server key pair is not a P-256 key pair");
        return -1;
    }
    rc = seal(as, as_pub, p256dh, auth, plaintext, len, rs, salt, out, err, errlen);
    EVP_PKEY_free(as);
    if (rc == 0)
        *outlen = len + PL_WP_OVERHEAD;
    return rc;
}

int pl_webpush_encrypt(const char *p256dh, const char *auth, const void *plaintext, size_t len,
                       uint32_t rs, unsigned char *out, size_t outsize, size_t *outlen,
                       char *err, size_t errlen)
{
    unsigned char salt[PL_WP_SALT_LEN], as_pub[PL_WP_POINT_LEN];
    EVP_PKEY *as = NULL;
    int rc = -1;

    if (sizes_ok(len, &rs, outsize, err, errlen) != 0)
        return -1;
    if (getrandom(salt, sizeof(salt), 0) != (ssize_t)sizeof(salt)) {
        snprintf(err, errlen, "no random salt");
        return -1;
    }
    /* a new key for every message (RFC 8291 3.2) */
    if ((as = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL ||
        pl_wp_key_point(as, as_pub) != 0)
        snprintf(err, errlen, "generating the message key failed");
    else if ((rc = seal(as, as_pub, p256dh, auth, plaintext, len, rs, salt, out, err,
                        errlen)) == 0)
        *outlen = len + PL_WP_OVERHEAD;
    EVP_PKEY_free(as);
    ERR_clear_error();
    return rc;
}
