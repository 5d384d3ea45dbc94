/* webpush.c -- lib/webpush.h: base64url, P-256 points to and from OpenSSL
 * keys, and the checks of a device's subscription (endpoint, origin,
 * keys, topic, urgency).  The VAPID key is in webpush_vapid.c, the message
 * encryption (RFC 8291) in webpush_ece.c. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

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

int pl_webpush_origin_allowed(const char *endpoint, const char *const *allowed)
{
    char origin[PL_WP_ENDPOINT_MAX + 1];
    if (allowed == NULL || pl_webpush_origin(endpoint, origin, sizeof(origin)) != 0)
        return 0;
    for (; *allowed; allowed++) {
        const char *a = *allowed, *star = strstr(a, "://*.");
        if (star == NULL) {
            if (strcasecmp(a, origin) == 0)
                return 1;
        } else {
            /* a host "*.example.com": that scheme, any host below the
             * domain, the scheme's default port */
            size_t sl = (size_t)(star - a) + 3, ol = strlen(origin), dl = strlen(star + 4);
            if (strncasecmp(a, origin, sl) == 0 && ol > sl + dl &&
                strcasecmp(origin + ol - dl, star + 4) == 0 &&
                strchr(origin + sl, ':') == NULL)
                return 1;
        }
    }
    return 0;
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
