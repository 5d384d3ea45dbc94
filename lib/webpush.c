/* webpush.c -- lib/webpush.h: base64url, the checks of a device's
 * subscription, the VAPID key and its Authorization header (RFC 8292).
 * The message encryption (RFC 8291) is in webpush_ece.c. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "log.h"
#include "webpush.h"
#include "webpush_int.h"

/* ---- base64url --------------------------------------------------------- */

static int b64url_val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

long pl_b64url_encode(const void *in, size_t len, char *out, size_t outlen)
{
    size_t full = 4 * ((len + 2) / 3), n;
    unsigned char *tmp;

    if (len > (size_t)INT32_MAX || (tmp = malloc(full + 1)) == NULL)
        return -1;
    EVP_EncodeBlock(tmp, in, (int)len);
    for (n = full; n > 0 && tmp[n - 1] == '='; n--)
        ;
    if (n + 1 > outlen) {
        free(tmp);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[i] == '+' ? '-' : tmp[i] == '/' ? '_' : (char)tmp[i];
    out[n] = '\0';
    free(tmp);
    return (long)n;
}

long pl_b64url_decode(const char *in, size_t inlen, void *out, size_t outlen)
{
    size_t n = inlen, rem, bytes, full;
    unsigned char *tmp;
    int got;

    /* padding: only to a multiple of 4, at most two */
    if (n % 4 == 0 && n > 0 && in[n - 1] == '=') {
        n--;
        if (in[n - 1] == '=')
            n--;
    }
    rem = n % 4;
    if (rem == 1 || n > (size_t)INT32_MAX / 2)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (b64url_val((unsigned char)in[i]) < 0)
            return -1;
    /* the bits past the last byte must be zero: one encoding per value */
    if ((rem == 2 && (b64url_val((unsigned char)in[n - 1]) & 0x0f) != 0) ||
        (rem == 3 && (b64url_val((unsigned char)in[n - 1]) & 0x03) != 0))
        return -1;
    bytes = n / 4 * 3 + (rem ? rem - 1 : 0);
    if (bytes > outlen)
        return -1;
    if (n == 0)
        return 0;
    full = (n + 3) / 4 * 4;
    if ((tmp = malloc(full + full / 4 * 3 + 3)) == NULL)
        return -1;
    for (size_t i = 0; i < full; i++)
        tmp[i] = i >= n ? '=' : in[i] == '-' ? '+' : in[i] == '_' ? '/' : (unsigned char)in[i];
    got = EVP_DecodeBlock(tmp + full, tmp, (int)full);
    if (got < 0 || (size_t)got < bytes) {
        free(tmp);
        return -1;
    }
    memcpy(out, tmp + full, bytes);
    OPENSSL_cleanse(tmp, full + full / 4 * 3 + 3);
    free(tmp);
    return (long)bytes;
}

long pl_b64url_canon(const char *in, char *out, size_t outlen)
{
    size_t n = strlen(in);
    unsigned char *bin = malloc(n / 4 * 3 + 3);
    long bl, rc = -1;

    if (bin && (bl = pl_b64url_decode(in, n, bin, n / 4 * 3 + 3)) >= 0)
        rc = pl_b64url_encode(bin, (size_t)bl, out, outlen);
    free(bin);
    return rc;
}

/* ---- P-256 points -------------------------------------------------------- */

EVP_PKEY *pl_wp_point_key(const unsigned char pt[PL_WP_POINT_LEN], const unsigned char *priv)
{
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM *p = NULL;
    EVP_PKEY_CTX *c = NULL, *chk = NULL;
    EVP_PKEY *k = NULL;
    BIGNUM *d = priv ? BN_bin2bn(priv, 32, NULL) : NULL;
    int sel = priv ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY;

    if (pt[0] != 0x04 || b == NULL || (priv && d == NULL))
        goto out;
    if (!OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pt, PL_WP_POINT_LEN) ||
        (d && !OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, d)) ||
        (p = OSSL_PARAM_BLD_to_param(b)) == NULL)
        goto out;
    if ((c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
        EVP_PKEY_fromdata_init(c) <= 0 || EVP_PKEY_fromdata(c, &k, sel, p) <= 0)
        goto out;
    /* on the curve, not the point at infinity (and the pair matches) */
    if ((chk = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL)) == NULL ||
        (priv ? EVP_PKEY_pairwise_check(chk) : EVP_PKEY_public_check(chk)) <= 0) {
        EVP_PKEY_free(k);
        k = NULL;
    }
out:
    EVP_PKEY_CTX_free(chk);
    EVP_PKEY_CTX_free(c);
    OSSL_PARAM_free(p);
    OSSL_PARAM_BLD_free(b);
    BN_clear_free(d);
    ERR_clear_error();
    return k;
}

int pl_wp_key_point(const EVP_PKEY *k, unsigned char pt[PL_WP_POINT_LEN])
{
    BIGNUM *x = NULL, *y = NULL;
    int rc = -1;

    if (EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_X, &x) > 0 &&
        EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, &y) > 0 &&
        BN_bn2binpad(x, pt + 1, 32) == 32 && BN_bn2binpad(y, pt + 33, 32) == 32) {
        pt[0] = 0x04;
        rc = 0;
    }
    BN_free(x);
    BN_free(y);
    return rc;
}

/* ---- a device's subscription -------------------------------------------- */

/* endpoint's scheme, host and port (port "" when none is given): 0 or -1 */
static int url_parts(const char *endpoint, char *scheme, size_t sl, char *host, size_t hl,
                     char *port, size_t pl)
{
    CURLU *u;
    char *s = NULL, *h = NULL, *p = NULL, *x = NULL;
    int rc = -1;
    CURLUcode pc;

    if ((u = curl_url()) == NULL || curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_SCHEME, &s, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK || h[0] == '\0')
        goto out;
    if (curl_url_get(u, CURLUPART_USER, &x, 0) != CURLUE_NO_USER ||
        curl_url_get(u, CURLUPART_PASSWORD, &x, 0) != CURLUE_NO_PASSWORD ||
        curl_url_get(u, CURLUPART_FRAGMENT, &x, 0) != CURLUE_NO_FRAGMENT)
        goto out;
    pc = curl_url_get(u, CURLUPART_PORT, &p, 0);
    if (pc != CURLUE_OK && pc != CURLUE_NO_PORT)
        goto out;
    if ((size_t)snprintf(scheme, sl, "%s", s) >= sl || (size_t)snprintf(host, hl, "%s", h) >= hl ||
        (size_t)snprintf(port, pl, "%s", p ? p : "") >= pl)
        goto out;
    for (char *c = scheme; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    for (char *c = host; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    rc = strcmp(scheme, "http") == 0 || strcmp(scheme, "https") == 0 ? 0 : -1;
out:
    curl_free(s);
    curl_free(h);
    curl_free(p);
    curl_free(x);
    curl_url_cleanup(u);
    return rc;
}

const char *pl_webpush_endpoint_check(const char *endpoint)
{
    char scheme[8], host[PL_WP_ENDPOINT_MAX + 1], port[8];
    size_t n = strlen(endpoint);

    if (n == 0 || n > PL_WP_ENDPOINT_MAX)
        return "the endpoint has 1 to 1024 characters";
    for (const char *c = endpoint; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return "the endpoint has only printable ASCII characters, no spaces";
    if (strncasecmp(endpoint, "http://", 7) != 0 && strncasecmp(endpoint, "https://", 8) != 0)
        return "the endpoint is an http or https URL";
    if (url_parts(endpoint, scheme, sizeof(scheme), host, sizeof(host), port, sizeof(port)) != 0)
        return "the endpoint is not a usable URL (a host, no user name, no fragment)";
    return NULL;
}

int pl_webpush_origin(const char *endpoint, char *out, size_t outlen)
{
    char scheme[8], host[PL_WP_ENDPOINT_MAX + 1], port[8];
    int n;

    if (pl_webpush_endpoint_check(endpoint) != NULL ||
        url_parts(endpoint, scheme, sizeof(scheme), host, sizeof(host), port, sizeof(port)) != 0)
        return -1;
    if ((strcmp(scheme, "http") == 0 && strcmp(port, "80") == 0) ||
        (strcmp(scheme, "https") == 0 && strcmp(port, "443") == 0))
        port[0] = '\0';
    n = snprintf(out, outlen, "%s://%s%s%s", scheme, host, port[0] ? ":" : "", port);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

const char *pl_webpush_p256dh_check(const char *p256dh)
{
    unsigned char pt[PL_WP_POINT_LEN + 1];
    EVP_PKEY *k;

    if (pl_b64url_decode(p256dh, strlen(p256dh), pt, sizeof(pt)) != PL_WP_POINT_LEN ||
        pt[0] != 0x04)
        return "p256dh is not base64url of a 65-byte uncompressed P-256 point";
    if ((k = pl_wp_point_key(pt, NULL)) == NULL)
        return "p256dh is not a point on P-256";
    EVP_PKEY_free(k);
    return NULL;
}

const char *pl_webpush_auth_check(const char *auth)
{
    unsigned char a[PL_WP_AUTH_LEN + 1];
    if (pl_b64url_decode(auth, strlen(auth), a, sizeof(a)) != PL_WP_AUTH_LEN)
        return "auth is not base64url of 16 bytes";
    return NULL;
}

int pl_webpush_topic_ok(const char *topic)
{
    size_t n = strlen(topic);
    if (n == 0 || n > PL_WP_TOPIC_MAX)
        return 0;
    for (; *topic; topic++)
        if (b64url_val((unsigned char)*topic) < 0)
            return 0;
    return 1;
}

int pl_webpush_urgency_ok(const char *u)
{
    return strcmp(u, "very-low") == 0 || strcmp(u, "low") == 0 || strcmp(u, "normal") == 0 ||
           strcmp(u, "high") == 0;
}

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
    n = snprintf(claims, sizeof(claims), "{\"aud\":\"%s\",\"exp\":%" PRId64 ",\"sub\":\"%s\"}",
                 aud, now + exp_secs, subject);
    if (n < 0 || (size_t)n >= sizeof(claims)) {
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
