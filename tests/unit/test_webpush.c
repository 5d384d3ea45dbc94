/* test_webpush.c -- unit tests of lib/webpush.h: RFC 8291's example
 * (Section 5, Appendix A) byte for byte; a message with a fresh salt and
 * key decrypted here as a browser would (OpenSSL, the example's device
 * private key); the VAPID token (RFC 8292) verified with the key from its
 * own "k=" and refused once changed; the key file (0600, never replaced,
 * wrong curve or type refused); base64url round trips and strictness;
 * bad device keys, sizes, topics and urgencies refused. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "testdir.h"
#include "webpush.h"

/* RFC 8291 Section 5 / Appendix A */
#define RFC_PLAIN "When I grow up, I want to be a watermelon"
#define RFC_UA_PUB "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
#define RFC_UA_PRIV "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
#define RFC_AUTH "BTBZMqHH6r4Tts7J_aSIgg"
#define RFC_AS_PUB "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
#define RFC_AS_PRIV "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
#define RFC_SALT "DGv6ra1nlYgDCS1FRnbzlw"
#define RFC_BODY "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"

static size_t dec(const char *b64, unsigned char *out, size_t outlen)
{
    long n = pl_b64url_decode(b64, strlen(b64), out, outlen);
    assert_true(n >= 0);
    return (size_t)n;
}

/* ---- base64url ----------------------------------------------------------- */

static void test_b64url(void **state)
{
    static const struct { const char *bin, *b64; } v[] = {
        {"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"}, {"foob", "Zm9vYg"},
        {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"}, {"\xff\xfe\xfd", "__79"},
    };
    static const char *const bad[] = {"Z", "Zg=", "Zh", "Zm9", "Zm9v!", "Zm+v", "Zm/v", "Zm9v====",
                                      "====", "Z===", "Zg==Zg", " Zg", "Zg\n"};
    unsigned char bin[300], back[300];
    char b64[420];
    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        size_t n = strlen(v[i].bin);
        assert_int_equal(pl_b64url_encode(v[i].bin, n, b64, sizeof(b64)), (long)strlen(v[i].b64));
        assert_string_equal(b64, v[i].b64);
        assert_int_equal(pl_b64url_decode(v[i].b64, strlen(v[i].b64), back, sizeof(back)), (long)n);
        assert_memory_equal(back, v[i].bin, n);
    }
    assert_int_equal(pl_b64url_decode("Zg==", 4, back, sizeof(back)), 1);   /* padded: taken */
    assert_int_equal(pl_b64url_decode("Zm8=", 4, back, sizeof(back)), 2);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pl_b64url_decode(bad[i], strlen(bad[i]), back, sizeof(back)), -1);
    /* every length, random bytes */
    srand(8291);
    for (size_t n = 0; n < sizeof(bin); n++) {
        for (size_t i = 0; i < n; i++)
            bin[i] = (unsigned char)rand();
        long e = pl_b64url_encode(bin, n, b64, sizeof(b64));
        assert_int_equal(e, (long)((4 * n + 2) / 3));
        assert_null(strpbrk(b64, "+/="));
        assert_int_equal(pl_b64url_decode(b64, (size_t)e, back, sizeof(back)), (long)n);
        assert_memory_equal(back, bin, n);
    }
    /* too small: refused, not cut */
    assert_int_equal(pl_b64url_encode("foo", 3, b64, 4), -1);
    assert_int_equal(pl_b64url_encode("foo", 3, b64, 5), 4);
    assert_int_equal(pl_b64url_decode("Zm9vYg", 6, back, 3), -1);
}

/* ---- RFC 8291's example -------------------------------------------------- */

static void test_rfc8291_vector(void **state)
{
    unsigned char salt[16], as_priv[32], as_pub[65], want[256], out[256];
    size_t wl, ol = 0;
    char err[256], b64[400];
    (void)state;
    assert_int_equal(dec(RFC_SALT, salt, sizeof(salt)), 16);
    assert_int_equal(dec(RFC_AS_PRIV, as_priv, sizeof(as_priv)), 32);
    assert_int_equal(dec(RFC_AS_PUB, as_pub, sizeof(as_pub)), 65);
    wl = dec(RFC_BODY, want, sizeof(want));
    assert_int_equal(wl, strlen(RFC_PLAIN) + PL_WP_OVERHEAD);
    assert_int_equal(pl_webpush_encrypt_with(RFC_UA_PUB, RFC_AUTH, RFC_PLAIN, strlen(RFC_PLAIN),
                                             4096, salt, as_priv, as_pub, out, sizeof(out), &ol,
                                             err, sizeof(err)), 0);
    assert_int_equal(ol, wl);
    assert_memory_equal(out, want, wl);
    pl_b64url_encode(out, ol, b64, sizeof(b64));
    assert_string_equal(b64, RFC_BODY);
    /* rs 0 means 4096: the same bytes */
    assert_int_equal(pl_webpush_encrypt_with(RFC_UA_PUB, RFC_AUTH, RFC_PLAIN, strlen(RFC_PLAIN), 0,
                                             salt, as_priv, as_pub, out, sizeof(out), &ol, err,
                                             sizeof(err)), 0);
    assert_memory_equal(out, want, wl);
    /* another plaintext gives another body: the comparison can fail */
    assert_int_equal(pl_webpush_encrypt_with(RFC_UA_PUB, RFC_AUTH, "When I grow up, I want to be a watermelop",
                                             strlen(RFC_PLAIN), 4096, salt, as_priv, as_pub, out,
                                             sizeof(out), &ol, err, sizeof(err)), 0);
    assert_memory_not_equal(out, want, wl);
    /* a key pair that does not match is refused */
    as_priv[31] ^= 1;
    assert_int_equal(pl_webpush_encrypt_with(RFC_UA_PUB, RFC_AUTH, RFC_PLAIN, strlen(RFC_PLAIN),
                                             4096, salt, as_priv, as_pub, out, sizeof(out), &ol,
                                             err, sizeof(err)), -1);
}

/* HKDF-SHA256 with OpenSSL, for the decryption below */
static void hkdf(const unsigned char *salt, size_t sl, const unsigned char *ikm, size_t il,
                 const void *info, size_t nl, unsigned char *out, size_t ol)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *c = EVP_KDF_CTX_new(kdf);
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, sl),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, il),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, nl),
        OSSL_PARAM_construct_end(),
    };
    assert_int_equal(EVP_KDF_derive(c, out, ol, p), 1);
    EVP_KDF_CTX_free(c);
    EVP_KDF_free(kdf);
}

static EVP_PKEY *ec_key(const unsigned char *pub, const unsigned char *priv)
{
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM *p;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *k = NULL;
    BIGNUM *d = priv ? BN_bin2bn(priv, 32, NULL) : NULL;
    OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, 65);
    if (d)
        OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, d);
    p = OSSL_PARAM_BLD_to_param(b);
    assert_int_equal(EVP_PKEY_fromdata_init(c), 1);
    assert_int_equal(EVP_PKEY_fromdata(c, &k, d ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, p), 1);
    OSSL_PARAM_free(p);
    OSSL_PARAM_BLD_free(b);
    EVP_PKEY_CTX_free(c);
    BN_free(d);
    return k;
}

/* What a browser does with the body (RFC 8291 3.4 from the other end):
 * the plaintext length, or -1 when the tag does not verify. */
static long ua_decrypt(const unsigned char *body, size_t len, unsigned char *plain)
{
    unsigned char ua_pub[65], ua_priv[32], auth[16], shared[32], ikm[32], cek[16], nonce[12];
    unsigned char info[14 + 130];
    EVP_PKEY *mine, *peer;
    EVP_PKEY_CTX *c;
    EVP_CIPHER_CTX *g;
    size_t sl = 32;
    int n, n2, ok;
    uint32_t rs = (uint32_t)body[16] << 24 | (uint32_t)body[17] << 16 | (uint32_t)body[18] << 8 | body[19];

    assert_true(len >= PL_WP_OVERHEAD);
    assert_int_equal(rs, 4096);
    assert_int_equal(body[20], 65);
    dec(RFC_UA_PUB, ua_pub, sizeof(ua_pub));
    dec(RFC_UA_PRIV, ua_priv, sizeof(ua_priv));
    dec(RFC_AUTH, auth, sizeof(auth));
    mine = ec_key(ua_pub, ua_priv);
    peer = ec_key(body + 21, NULL);
    c = EVP_PKEY_CTX_new_from_pkey(NULL, mine, NULL);
    assert_int_equal(EVP_PKEY_derive_init(c), 1);
    assert_int_equal(EVP_PKEY_derive_set_peer(c, peer), 1);
    assert_int_equal(EVP_PKEY_derive(c, shared, &sl), 1);
    EVP_PKEY_CTX_free(c);
    memcpy(info, "WebPush: info", 14);
    memcpy(info + 14, ua_pub, 65);
    memcpy(info + 79, body + 21, 65);
    hkdf(auth, 16, shared, 32, info, sizeof(info), ikm, 32);
    hkdf(body, 16, ikm, 32, "Content-Encoding: aes128gcm", 28, cek, 16);
    hkdf(body, 16, ikm, 32, "Content-Encoding: nonce", 24, nonce, 12);
    g = EVP_CIPHER_CTX_new();
    EVP_DecryptInit_ex(g, EVP_aes_128_gcm(), NULL, cek, nonce);
    EVP_DecryptUpdate(g, plain, &n, body + 86, (int)(len - 86 - 16));
    EVP_CIPHER_CTX_ctrl(g, EVP_CTRL_GCM_SET_TAG, 16, (void *)(body + len - 16));
    ok = EVP_DecryptFinal_ex(g, plain + n, &n2);
    EVP_CIPHER_CTX_free(g);
    EVP_PKEY_free(mine);
    EVP_PKEY_free(peer);
    if (ok != 1)
        return -1;
    assert_true(n >= 1);
    assert_int_equal(plain[n - 1], 0x02);      /* the last record's delimiter, no padding */
    return n - 1;
}

static void test_encrypt_fresh(void **state)
{
    unsigned char out1[PL_WP_BODY_MAX], out2[PL_WP_BODY_MAX], plain[PL_WP_BODY_MAX];
    static char big[PL_WP_PLAIN_MAX + 1];
    size_t l1, l2;
    char err[256];
    (void)state;
    assert_int_equal(pl_webpush_encrypt(RFC_UA_PUB, RFC_AUTH, "hello", 5, 0, out1, sizeof(out1),
                                        &l1, err, sizeof(err)), 0);
    assert_int_equal(l1, 5 + PL_WP_OVERHEAD);
    assert_int_equal(ua_decrypt(out1, l1, plain), 5);
    assert_memory_equal(plain, "hello", 5);
    assert_int_equal(pl_webpush_encrypt(RFC_UA_PUB, RFC_AUTH, "hello", 5, 0, out2, sizeof(out2),
                                        &l2, err, sizeof(err)), 0);
    assert_memory_not_equal(out1, out2, 16);               /* a new salt */
    assert_memory_not_equal(out1 + 21, out2 + 21, 65);     /* a new key */
    /* a flipped bit: the tag does not verify */
    out1[90] ^= 0x40;
    assert_int_equal(ua_decrypt(out1, l1, plain), -1);
    /* empty and largest payloads */
    assert_int_equal(pl_webpush_encrypt(RFC_UA_PUB, RFC_AUTH, "", 0, 0, out1, sizeof(out1), &l1,
                                        err, sizeof(err)), 0);
    assert_int_equal(ua_decrypt(out1, l1, plain), 0);
    memset(big, 'x', sizeof(big));
    assert_int_equal(pl_webpush_encrypt(RFC_UA_PUB, RFC_AUTH, big, PL_WP_PLAIN_MAX, 0, out1,
                                        sizeof(out1), &l1, err, sizeof(err)), 0);
    assert_int_equal(l1, PL_WP_BODY_MAX);
    assert_int_equal(ua_decrypt(out1, l1, plain), PL_WP_PLAIN_MAX);
    assert_memory_equal(plain, big, PL_WP_PLAIN_MAX);
    /* too large, a record too small for it, an output buffer too small */
    assert_int_equal(pl_webpush_encrypt(RFC_UA_PUB, RFC_AUTH, big, PL_WP_PLAIN_MAX + 1, 0, out1,
                                        sizeof(out1), &l1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "at most 3993"));
    assert_int_equal(pl_webpush_encrypt(RFC_UA_PUB, RFC_AUTH, "hello", 5, 22, out1, sizeof(out1),
                                        &l1, err, sizeof(err)), -1);
    assert_int_equal(pl_webpush_encrypt(RFC_UA_PUB, RFC_AUTH, "hello", 5, 23, out1, sizeof(out1),
                                        &l1, err, sizeof(err)), 0);
    assert_int_equal(pl_webpush_encrypt(RFC_UA_PUB, RFC_AUTH, "hello", 5, 0, out1,
                                        5 + PL_WP_OVERHEAD - 1, &l1, err, sizeof(err)), -1);
}

static void test_bad_device_keys(void **state)
{
    unsigned char pt[65], out[512];
    char b64[100], err[256];
    size_t ol;
    (void)state;
    assert_null(pl_webpush_p256dh_check(RFC_UA_PUB));
    assert_null(pl_webpush_auth_check(RFC_AUTH));
    dec(RFC_UA_PUB, pt, sizeof(pt));
    /* off the curve */
    pt[64] ^= 1;
    pl_b64url_encode(pt, 65, b64, sizeof(b64));
    assert_non_null(pl_webpush_p256dh_check(b64));
    assert_int_equal(pl_webpush_encrypt(b64, RFC_AUTH, "x", 1, 0, out, sizeof(out), &ol, err,
                                        sizeof(err)), -1);
    pt[64] ^= 1;
    /* compressed form, wrong length, not base64url */
    pt[0] = 0x02;
    pl_b64url_encode(pt, 33, b64, sizeof(b64));
    assert_non_null(pl_webpush_p256dh_check(b64));
    pt[0] = 0x04;
    pl_b64url_encode(pt, 64, b64, sizeof(b64));
    assert_non_null(pl_webpush_p256dh_check(b64));
    assert_non_null(pl_webpush_p256dh_check(""));
    assert_non_null(pl_webpush_p256dh_check(RFC_UA_PUB "A"));
    assert_non_null(pl_webpush_p256dh_check("BCVxsr7N+eNgVRqvHtD0zTZsEc6/VV+JvLexhqUzORcxaOzi6+AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"));
    /* the point at infinity is not a key */
    memset(pt, 0, sizeof(pt));
    pt[0] = 0x04;
    pl_b64url_encode(pt, 65, b64, sizeof(b64));
    assert_non_null(pl_webpush_p256dh_check(b64));
    /* auth: 16 bytes only */
    assert_non_null(pl_webpush_auth_check("BTBZMqHH6r4Tts7J_aSI"));     /* 15 */
    assert_non_null(pl_webpush_auth_check("BTBZMqHH6r4Tts7J_aSIggAA"));  /* 18 */
    assert_non_null(pl_webpush_auth_check(""));
    assert_int_equal(pl_webpush_encrypt(RFC_UA_PUB, "BTBZMqHH6r4Tts7J_aSI", "x", 1, 0, out,
                                        sizeof(out), &ol, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "auth"));
}

static void test_checks(void **state)
{
    char o[PL_WP_ENDPOINT_MAX + 1], big[PL_WP_ENDPOINT_MAX + 2];
    (void)state;
    assert_null(pl_webpush_endpoint_check("https://fcm.googleapis.com/fcm/send/abc:def"));
    assert_null(pl_webpush_endpoint_check("http://127.0.0.1:8090/notify/00ff"));
    assert_non_null(pl_webpush_endpoint_check("ftp://example.com/x"));
    assert_non_null(pl_webpush_endpoint_check("https://"));
    assert_non_null(pl_webpush_endpoint_check("https://user:pw@example.com/x"));
    assert_non_null(pl_webpush_endpoint_check("https://example.com/x#frag"));
    assert_non_null(pl_webpush_endpoint_check("https://example.com/a b"));
    assert_non_null(pl_webpush_endpoint_check("https://example.com/\xc3\xa4"));
    assert_non_null(pl_webpush_endpoint_check("example.com/x"));
    assert_non_null(pl_webpush_endpoint_check(""));
    memset(big, 'a', sizeof(big));
    memcpy(big, "https://example.com/", 20);
    big[PL_WP_ENDPOINT_MAX] = '\0';
    assert_null(pl_webpush_endpoint_check(big));
    big[PL_WP_ENDPOINT_MAX] = 'a';
    big[PL_WP_ENDPOINT_MAX + 1] = '\0';
    assert_non_null(pl_webpush_endpoint_check(big));

    assert_int_equal(pl_webpush_origin("https://Push.Example.NET:443/wpush/v2/x?y=1", o, sizeof(o)), 0);
    assert_string_equal(o, "https://push.example.net");
    assert_int_equal(pl_webpush_origin("http://127.0.0.1:8090/notify/ab", o, sizeof(o)), 0);
    assert_string_equal(o, "http://127.0.0.1:8090");
    assert_int_equal(pl_webpush_origin("http://[::1]:80/x", o, sizeof(o)), 0);
    assert_string_equal(o, "http://[::1]");
    assert_int_equal(pl_webpush_origin("HTTPS://example.com:8443", o, sizeof(o)), 0);
    assert_string_equal(o, "https://example.com:8443");
    assert_int_equal(pl_webpush_origin("https://example.com/x", o, 10), -1);

    assert_true(pl_webpush_topic_ok("new-mail_01"));
    assert_true(pl_webpush_topic_ok("abcdefghijklmnopqrstuvwxyzABCDEF"));     /* 32 */
    assert_false(pl_webpush_topic_ok("abcdefghijklmnopqrstuvwxyzABCDEFG"));   /* 33 */
    assert_false(pl_webpush_topic_ok(""));
    assert_false(pl_webpush_topic_ok("new mail"));
    assert_false(pl_webpush_topic_ok("a=b"));
    assert_false(pl_webpush_topic_ok("a/b"));
    assert_true(pl_webpush_urgency_ok("very-low") && pl_webpush_urgency_ok("high"));
    assert_false(pl_webpush_urgency_ok("urgent") || pl_webpush_urgency_ok("") ||
                 pl_webpush_urgency_ok("HIGH"));
}

/* ---- VAPID --------------------------------------------------------------- */

struct vfx { char dir[64], pem[128]; pl_vapid_key *k; };

static int vsetup(void **state)
{
    struct vfx *f = calloc(1, sizeof(*f));
    char err[256];
    assert_non_null(testdir_new(f->dir, sizeof(f->dir)));
    snprintf(f->pem, sizeof(f->pem), "%s/vapid.pem", f->dir);
    assert_int_equal(pl_vapid_generate(f->pem, err, sizeof(err)), 0);
    f->k = pl_vapid_load(f->pem, err, sizeof(err));
    assert_non_null(f->k);
    *state = f;
    return 0;
}

static int vteardown(void **state)
{
    struct vfx *f = *state;
    pl_vapid_free(f->k);
    testdir_remove(f->dir);
    free(f);
    return 0;
}

/* raw r || s to DER and verify over data with the point pub */
static int es256_verify(const unsigned char pub[65], const char *data, size_t len,
                        const unsigned char rs[64])
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    unsigned char *der = NULL;
    int dl, ok;
    EVP_PKEY *k = ec_key(pub, NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ECDSA_SIG_set0(sig, BN_bin2bn(rs, 32, NULL), BN_bin2bn(rs + 32, 32, NULL));
    dl = i2d_ECDSA_SIG(sig, &der);
    assert_true(dl > 0);
    assert_int_equal(EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, k, NULL), 1);
    ok = EVP_DigestVerify(md, der, (size_t)dl, (const unsigned char *)data, len);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    return ok == 1;
}

static void test_vapid_key_file(void **state)
{
    struct vfx *f = *state;
    struct stat st;
    unsigned char pt[66];
    char err[256], pem2[160];
    pl_vapid_key *k2;
    (void)state;
    assert_int_equal(stat(f->pem, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(strlen(pl_vapid_public(f->k)), PL_WP_B64_POINT_LEN);
    assert_int_equal(dec(pl_vapid_public(f->k), pt, sizeof(pt)), 65);
    assert_int_equal(pt[0], 0x04);
    assert_null(pl_webpush_p256dh_check(pl_vapid_public(f->k)));   /* on the curve */
    /* never replaced */
    assert_int_equal(pl_vapid_generate(f->pem, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "exists"));
    k2 = pl_vapid_load(f->pem, err, sizeof(err));
    assert_non_null(k2);
    assert_string_equal(pl_vapid_public(k2), pl_vapid_public(f->k));
    pl_vapid_free(k2);
    /* a second key is another key */
    snprintf(pem2, sizeof(pem2), "%s/other.pem", f->dir);
    assert_int_equal(pl_vapid_generate(pem2, err, sizeof(err)), 0);
    k2 = pl_vapid_load(pem2, err, sizeof(err));
    assert_non_null(k2);
    assert_string_not_equal(pl_vapid_public(k2), pl_vapid_public(f->k));
    pl_vapid_free(k2);
}

static void write_key(const char *path, EVP_PKEY *k)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(fp);
    EVP_PKEY_free(k);
}

static void test_vapid_bad_files(void **state)
{
    struct vfx *f = *state;
    char path[160], err[256];
    FILE *fp;
    assert_null(pl_vapid_load("/nonexistent/vapid.pem", err, sizeof(err)));
    assert_non_null(strstr(err, "No such file"));
    snprintf(path, sizeof(path), "%s/p384.pem", f->dir);
    write_key(path, EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384"));
    assert_null(pl_vapid_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, "secp384r1"));
    assert_non_null(strstr(err, "not P-256"));
    snprintf(path, sizeof(path), "%s/ed.pem", f->dir);
    write_key(path, EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));
    assert_null(pl_vapid_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, "not an EC key"));
    snprintf(path, sizeof(path), "%s/junk.pem", f->dir);
    fp = fopen(path, "w");
    fputs("-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n", fp);
    fclose(fp);
    assert_null(pl_vapid_load(path, err, sizeof(err)));
    assert_non_null(strstr(err, "no unencrypted PEM private key"));
    assert_null(pl_vapid_load(f->dir, err, sizeof(err)));
    assert_non_null(strstr(err, "not a regular file"));
}

static void test_vapid_header(void **state)
{
    struct vfx *f = *state;
    char h[2048], err[256], *t, *k, *dot1, *dot2;
    unsigned char json[512], sig[65], pub[65];
    long n;
    (void)state;
    assert_int_equal(pl_vapid_header(f->k, "https://Push.Example.NET/wpush/v2/gAAAA?x=1",
                                     "mailto:admin@example.com", 1700000000, 3600, h, sizeof(h),
                                     err, sizeof(err)), 0);
    assert_int_equal(strncmp(h, "vapid t=", 8), 0);
    t = h + 8;
    k = strstr(h, ", k=");
    assert_non_null(k);
    *k = '\0';
    k += 4;
    assert_string_equal(k, pl_vapid_public(f->k));
    dot1 = strchr(t, '.');
    assert_non_null(dot1);
    dot2 = strchr(dot1 + 1, '.');
    assert_non_null(dot2);
    n = pl_b64url_decode(t, (size_t)(dot1 - t), json, sizeof(json) - 1);
    assert_true(n > 0);
    json[n] = '\0';
    assert_string_equal((char *)json, "{\"typ\":\"JWT\",\"alg\":\"ES256\"}");
    n = pl_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), json, sizeof(json) - 1);
    assert_true(n > 0);
    json[n] = '\0';
    assert_string_equal((char *)json, "{\"aud\":\"https://push.example.net\",\"exp\":1700003600,"
                                      "\"sub\":\"mailto:admin@example.com\"}");
    assert_int_equal(pl_b64url_decode(dot2 + 1, strlen(dot2 + 1), sig, sizeof(sig)), 64);
    dec(k, pub, sizeof(pub));
    /* the signature covers "header.claims" and verifies with k */
    assert_true(es256_verify(pub, t, (size_t)(dot2 - t), sig));
    /* and not once anything is changed */
    t[dot2 - t - 1] ^= 1;
    assert_false(es256_verify(pub, t, (size_t)(dot2 - t), sig));
    t[dot2 - t - 1] ^= 1;
    sig[10] ^= 1;
    assert_false(es256_verify(pub, t, (size_t)(dot2 - t), sig));

    /* exp: default 12 h, at most 24 h */
    assert_int_equal(pl_vapid_header(f->k, "https://p.example/x", "https://example.com/contact",
                                     100, 0, h, sizeof(h), err, sizeof(err)), 0);
    dot1 = strchr(h, '.');
    n = pl_b64url_decode(dot1 + 1, (size_t)(strchr(dot1 + 1, '.') - dot1 - 1), json, sizeof(json) - 1);
    json[n] = '\0';
    assert_non_null(strstr((char *)json, "\"exp\":43300,"));
    assert_int_equal(pl_vapid_header(f->k, "https://p.example/x", "mailto:a@example.com", 100,
                                     86401, h, sizeof(h), err, sizeof(err)), -1);
    assert_int_equal(pl_vapid_header(f->k, "https://p.example/x", "mailto:a@example.com", 100,
                                     86400, h, sizeof(h), err, sizeof(err)), 0);
    /* the subject: mailto: or https:, nothing to escape */
    assert_int_equal(pl_vapid_header(f->k, "https://p.example/x", "admin@example.com", 100, 0, h,
                                     sizeof(h), err, sizeof(err)), -1);
    assert_int_equal(pl_vapid_header(f->k, "https://p.example/x", "mailto:a\"@example.com", 100,
                                     0, h, sizeof(h), err, sizeof(err)), -1);
    /* the endpoint */
    assert_int_equal(pl_vapid_header(f->k, "ftp://p.example/x", "mailto:a@example.com", 100, 0,
                                     h, sizeof(h), err, sizeof(err)), -1);
    /* the output buffer */
    assert_int_equal(pl_vapid_header(f->k, "https://p.example/x", "mailto:a@example.com", 100, 0,
                                     h, 100, err, sizeof(err)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_rfc8291_vector),
        cmocka_unit_test(test_encrypt_fresh),
        cmocka_unit_test(test_bad_device_keys),
        cmocka_unit_test(test_checks),
        cmocka_unit_test_setup_teardown(test_vapid_key_file, vsetup, vteardown),
        cmocka_unit_test_setup_teardown(test_vapid_bad_files, vsetup, vteardown),
        cmocka_unit_test_setup_teardown(test_vapid_header, vsetup, vteardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
