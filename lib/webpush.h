/* webpush.h -- the cryptography of Web Push for postlink-pushd (capability
 * 5): the VAPID key (RFC 8292) and its Authorization header, the message
 * encryption (RFC 8291: ECDH P-256, HKDF-SHA256, AES-128-GCM, one
 * aes128gcm record of RFC 8188), base64url without padding, and the checks
 * of what a device registers.  OpenSSL 3 does the primitives; nothing here
 * does I/O except pl_vapid_load and pl_vapid_generate (the key file).
 * lib/webpush_send.h sends the result (RFC 8030). */
#ifndef PL_WEBPUSH_H
#define PL_WEBPUSH_H

#include <stddef.h>
#include <stdint.h>

#define PL_WP_POINT_LEN 65          /* an uncompressed P-256 point: 0x04 || x || y */
#define PL_WP_AUTH_LEN 16           /* the device's auth secret */
#define PL_WP_SALT_LEN 16
#define PL_WP_HEADER_LEN (PL_WP_SALT_LEN + 4 + 1 + PL_WP_POINT_LEN)   /* 86 */
#define PL_WP_OVERHEAD (PL_WP_HEADER_LEN + 1 + 16)   /* header, delimiter, GCM tag */
#define PL_WP_BODY_MAX 4096         /* what every push service takes (RFC 8030 7.2) */
#define PL_WP_PLAIN_MAX (PL_WP_BODY_MAX - PL_WP_OVERHEAD)   /* 3993 */
#define PL_WP_RS_DEFAULT 4096
#define PL_WP_ENDPOINT_MAX 1024
#define PL_WP_B64_POINT_LEN 87      /* base64url of 65 bytes */
#define PL_WP_B64_AUTH_LEN 22       /* base64url of 16 bytes */
#define PL_WP_TOPIC_MAX 32          /* RFC 8030 5.4 */
#define PL_WP_EXP_DEFAULT (12 * 3600)
#define PL_WP_EXP_MAX (24 * 3600)   /* RFC 8292 2: at most 24 hours */

/* A device's Web Push subscription (PushSubscription.toJSON()). */
struct pl_webpush_sub {
    char endpoint[PL_WP_ENDPOINT_MAX + 1];
    char p256dh[PL_WP_B64_POINT_LEN + 1];   /* base64url, no padding */
    char auth[PL_WP_B64_AUTH_LEN + 1];
};

/* ---- base64url (RFC 4648 5) ---------------------------------------------- */

/* Encodes without padding into out (NUL-terminated): the length, or -1
 * when out (outlen bytes) is too small. */
long pl_b64url_encode(const void *in, size_t len, char *out, size_t outlen);
/* Decodes in[0..inlen) (the URL-safe alphabet; "=" padding is accepted
 * only where it belongs; unused low bits must be zero, so every value has
 * one encoding): the byte count, or -1 for bad input or an out too small. */
long pl_b64url_decode(const char *in, size_t inlen, void *out, size_t outlen);
/* in (NUL-terminated, any form decode takes) in its one unpadded form:
 * the length, or -1 when in does not decode or out is too small. */
long pl_b64url_canon(const char *in, char *out, size_t outlen);

/* ---- what a device registers -------------------------------------------- */

/* NULL when usable, else why not.  endpoint: an http or https URL with a
 * host, at most PL_WP_ENDPOINT_MAX printable ASCII characters, no user
 * name or password, no fragment.  p256dh: base64url of an uncompressed
 * P-256 point on the curve.  auth: base64url of 16 bytes. */
const char *pl_webpush_endpoint_check(const char *endpoint);
const char *pl_webpush_p256dh_check(const char *p256dh);
const char *pl_webpush_auth_check(const char *auth);
/* The endpoint's origin (RFC 6454: "scheme://host[:port]", lower case,
 * the port only when it is not the scheme's default), the "aud" of the
 * VAPID token: 0, or -1 when the endpoint is not usable. */
/* 1 when the endpoint's origin is one of allowed (NULL-ended): an origin
 * as written ("https://push.example.com", "http://127.0.0.1:8080") or a
 * wildcard, an origin whose host is "*." and a domain (any host below that
 * domain, that scheme, its default port); else 0.  A device chooses its endpoint, so
 * postlink-pushd posts only to push services on this list. */
int pl_webpush_origin_allowed(const char *endpoint, const char *const *allowed);
int pl_webpush_origin(const char *endpoint, char *out, size_t outlen);
/* 1 when topic is 1..32 characters of the base64url alphabet (RFC 8030 5.4). */
int pl_webpush_topic_ok(const char *topic);
/* 1 for "very-low", "low", "normal", "high" (RFC 8030 5.3). */
int pl_webpush_urgency_ok(const char *urgency);

/* ---- the VAPID key --------------------------------------------------------- */

typedef struct pl_vapid_key pl_vapid_key;

/* Reads an EC P-256 private key (PEM, "EC PRIVATE KEY" or PKCS#8): the key,
 * or NULL with err set (missing, unreadable, not EC, another curve).  A
 * file others may read is used, with a warning. */
pl_vapid_key *pl_vapid_load(const char *pem_path, char *err, size_t errlen);
/* Writes a new P-256 key as PKCS#8 PEM, mode 0600; never replaces a file:
 * 0, or -1 with err set (one exists, I/O error). */
int pl_vapid_generate(const char *pem_path, char *err, size_t errlen);
void pl_vapid_free(pl_vapid_key *k);
/* The application server key: base64url of the uncompressed public point
 * (PL_WP_B64_POINT_LEN characters), what a browser's subscribe() takes as
 * applicationServerKey and the "k" of the header. */
const char *pl_vapid_public(const pl_vapid_key *k);

/* The Authorization header's value for a request to endpoint (RFC 8292 3):
 * "vapid t=<JWT>, k=<public key>", the JWT signed with ES256 and carrying
 * aud = the endpoint's origin, exp = now + exp_secs (0 = 12 hours, at
 * most 24 hours), sub = subject ("mailto:..." or "https:...", printable
 * ASCII without quotes or backslashes).  0, or -1 with err set. */
int pl_vapid_header(const pl_vapid_key *k, const char *endpoint, const char *subject,
                    int64_t now, long exp_secs, char *out, size_t outlen, char *err,
                    size_t errlen);

/* ---- encryption (RFC 8291 3.4, RFC 8188) ------------------------------------- */

/* Encrypts plaintext (len <= PL_WP_PLAIN_MAX) for the device keys p256dh
 * and auth (base64url) as one aes128gcm record with a fresh salt and a
 * fresh ephemeral key: the header (salt, rs, keyid = the ephemeral public
 * key), then plaintext || 0x02 sealed with its 16-byte tag, no padding.
 * rs: the record size in the header (0 = 4096; it must exceed len + 17).
 * out gets len + PL_WP_OVERHEAD bytes; *outlen is set.  0, or -1 with err. */
int pl_webpush_encrypt(const char *p256dh, const char *auth, const void *plaintext, size_t len,
                       uint32_t rs, unsigned char *out, size_t outsize, size_t *outlen,
                       char *err, size_t errlen);
/* The same with the salt and the ephemeral key pair given (as_priv: the
 * 32-byte scalar, as_pub: its uncompressed point), for RFC 8291's example. */
int pl_webpush_encrypt_with(const char *p256dh, const char *auth, const void *plaintext,
                            size_t len, uint32_t rs, const unsigned char salt[PL_WP_SALT_LEN],
                            const unsigned char as_priv[32],
                            const unsigned char as_pub[PL_WP_POINT_LEN], unsigned char *out,
                            size_t outsize, size_t *outlen, char *err, size_t errlen);

#endif
