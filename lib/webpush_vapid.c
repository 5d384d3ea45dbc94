/* webpush_vapid.c -- lib/webpush.h's VAPID key (RFC 8292): a P-256 key in
 * a PEM file (made with mode 0600, never replaced), its public point as
 * the application server key, and the Authorization header "vapid t=<JWT>,
 * k=<key>" with an ES256 token (the DER signature OpenSSL makes turned
 * into JOSE's r || s). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "log.h"
#include "webpush.h"
#include "webpush_int.h"

/* ---- the VAPID key --------------------------------------------------------- */

struct pl_vapid_key {
    EVP_PKEY *pkey;
    char pub[PL_WP_B64_POINT_LEN + 1];
};

static void ssl_err(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[160];
    if (e) {
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(err, errlen, "%s: %s", what, buf);
    } else {
        snprintf(err, errlen, "%s", what);
    }
    ERR_clear_error();
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

/* a key from pkey (taken over) when it is an EC P-256 private key */
static pl_vapid_key *vapid_wrap(EVP_PKEY *pkey, const char *what, char *err, size_t errlen)
{
    char group[64] = "";
    unsigned char pt[PL_WP_POINT_LEN];
    BIGNUM *d = NULL;
    pl_vapid_key *k;

    if (!EVP_PKEY_is_a(pkey, "EC")) {
        snprintf(err, errlen, "%s: not an EC key (a P-256 key is needed)", what);
        goto bad;
    }
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) <= 0 ||
        strcmp(group, "prime256v1") != 0) {
        snprintf(err, errlen, "%s: the key is on curve %s, not P-256 (prime256v1)", what,
                 group[0] ? group : "(unknown)");
        goto bad;
    }
    if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d) <= 0 ||
        pl_wp_key_point(pkey, pt) != 0) {
        snprintf(err, errlen, "%s: not a private key with its public point", what);
        goto bad;
    }
    BN_clear_free(d);
    k = calloc(1, sizeof(*k));
    if (k == NULL || pl_b64url_encode(pt, sizeof(pt), k->pub, sizeof(k->pub)) != PL_WP_B64_POINT_LEN) {
        free(k);
        snprintf(err, errlen, "%s: out of memory", what);
        goto bad;
    }
    k->pkey = pkey;
    return k;
bad:
    BN_clear_free(d);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return NULL;
}

pl_vapid_key *pl_vapid_load(const char *pem_path, char *err, size_t errlen)
{
    struct stat st;
    BIO *bio;
    EVP_PKEY *pkey;

    if (stat(pem_path, &st) != 0) {
        snprintf(err, errlen, "VAPID key %s: %s", pem_path, strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "VAPID key %s: not a regular file", pem_path);
        return NULL;
    }
    if ((bio = BIO_new_file(pem_path, "r")) == NULL) {
        snprintf(err, errlen, "VAPID key %s: %s", pem_path, strerror(errno));
        ERR_clear_error();
        return NULL;
    }
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (pkey == NULL) {
        char what[300];
        snprintf(what, sizeof(what), "VAPID key %s: no unencrypted PEM private key", pem_path);
        ssl_err(err, errlen, what);
        return NULL;
    }
    {
        char what[300];
        pl_vapid_key *k;
        snprintf(what, sizeof(what), "VAPID key %s", pem_path);
        if ((k = vapid_wrap(pkey, what, err, errlen)) != NULL && (st.st_mode & (S_IROTH | S_IWOTH)))
            msg_warn("VAPID key %s can be read by anyone (mode %04o): chmod 600 it", pem_path,
                     (unsigned)(st.st_mode & 07777));
        return k;
    }
}

int pl_vapid_generate(const char *pem_path, char *err, size_t errlen)
{
    EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIO *bio = NULL;
    int fd = -1, ok = 0;

    if (pkey == NULL) {
        ssl_err(err, errlen, "generating a P-256 key");
        return -1;
    }
    fd = open(pem_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "VAPID key %s: %s", pem_path,
                 errno == EEXIST ? "exists already (never replaced)" : strerror(errno));
        EVP_PKEY_free(pkey);
        return -1;
    }
    if (fchmod(fd, 0600) == 0 && (bio = BIO_new_fd(fd, BIO_NOCLOSE)) != NULL &&
        PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) && BIO_flush(bio) > 0 &&
        fsync(fd) == 0)
        ok = 1;
    else
        ssl_err(err, errlen, "writing the VAPID key");
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    if (close(fd) != 0 && ok) {
        snprintf(err, errlen, "VAPID key %s: %s", pem_path, strerror(errno));
        ok = 0;
    }
    if (!ok)
        unlink(pem_path);
    return ok ? 0 : -1;
}

void pl_vapid_free(pl_vapid_key *k)
{
    if (k) {
        EVP_PKEY_free(k->pkey);
        free(k);
    }
}

const char *pl_vapid_public(const pl_vapid_key *k) { return k->pub; }

/* "sub": mailto: or https:, printable ASCII, nothing to escape in JSON */
static int subject_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 8 || n > 256 || (strncmp(s, "mailto:", 7) != 0 && strncmp(s, "https:", 6) != 0))
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f || *s == '"' || *s == '\\')
            return 0;
    return 1;
}

/* ES256 (RFC 7518 3.4): the signature of data as r || s, 32 bytes each */
static int es256_sign(EVP_PKEY *pkey, const char *data, size_t len, unsigned char rs[64])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[80];
    const unsigned char *p = der;
    size_t dl = sizeof(der);
    ECDSA_SIG *sig = NULL;
    const BIGNUM *r, *s;
    int rc = -1;

    if (md && EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, pkey, NULL) > 0 &&
        EVP_DigestSign(md, der, &dl, (const unsigned char *)data, len) > 0 &&
        (sig = d2i_ECDSA_SIG(NULL, &p, (long)dl)) != NULL) {
        ECDSA_SIG_get0(sig, &r, &s);
        if (BN_bn2binpad(r, rs, 32) == 32 && BN_bn2binpad(s, rs + 32, 32) == 32)
            rc = 0;
    }
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    return rc;
}

/* The JWT claims (RFC 8292 section 2) as compact JSON, written by jansson. */
static int claims_json(const char *aud, int64_t exp, const char *sub, char *out, size_t outlen,
                       int *n)
{
    json_t *o = json_pack("{s:s, s:I, s:s}", "aud", aud, "exp", (json_int_t)exp, "sub", sub);
    size_t len;
    if (o == NULL)
        return -1;
    len = json_dumpb(o, out, outlen, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (len == 0 || len >= outlen)
        return -1;
    *n = (int)len;
    return 0;
}

int pl_vapid_header(const pl_vapid_key *k, const char *endpoint, const char *subject,
                    int64_t now, long exp_secs, char *out, size_t outlen, char *err,
                    size_t errlen)
{
    /* {"typ":"JWT","alg":"ES256"} */
    static const char jwt_head[] = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9";
    char aud[PL_WP_ENDPOINT_MAX + 1], claims[PL_WP_ENDPOINT_MAX + 400];
    char signing[sizeof(jwt_head) + 2 * sizeof(claims)];
    char sigb64[90];
    unsigned char sig[64];
    size_t sl;
    long cl;
    int n;

    if (exp_secs == 0)
        exp_secs = PL_WP_EXP_DEFAULT;
    if (exp_secs < 0 || exp_secs > PL_WP_EXP_MAX) {
        snprintf(err, errlen, "VAPID token lifetime %ld s: 1 s to 24 hours", exp_secs);
        return -1;
    }
    if (pl_webpush_origin(endpoint, aud, sizeof(aud)) != 0) {
        snprintf(err, errlen, "endpoint: %s",
                 pl_webpush_endpoint_check(endpoint) ? pl_webpush_endpoint_check(endpoint)
                                                     : "no origin");
        return -1;
    }
    if (!subject_ok(subject)) {
        snprintf(err, errlen, "VAPID subject \"%.64s\": a mailto: or https: URI of printable "
                 "ASCII (no quotes, no backslashes)", subject);
        return -1;
    }
    if (claims_json(aud, now + exp_secs, subject, claims, sizeof(claims), &n) != 0) {
        snprintf(err, errlen, "VAPID claims too long");
        return -1;
    }
    sl = sizeof(jwt_head) - 1;
    memcpy(signing, jwt_head, sl);
    signing[sl++] = '.';
    cl = pl_b64url_encode(claims, (size_t)n, signing + sl, sizeof(signing) - sl);
    if (cl < 0) {
        snprintf(err, errlen, "VAPID claims too long");
        return -1;
    }
    sl += (size_t)cl;
    if (es256_sign(k->pkey, signing, sl, sig) != 0 ||
        pl_b64url_encode(sig, sizeof(sig), sigb64, sizeof(sigb64)) < 0) {
        ssl_err(err, errlen, "signing the VAPID token");
        return -1;
    }
    n = snprintf(out, outlen, "vapid t=%s.%s, k=%s", signing, sigb64, k->pub);
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "the Authorization header does not fit %zu bytes", outlen);
        return -1;
    }
    return 0;
}
