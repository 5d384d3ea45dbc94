/* webpush_int.h -- what lib/webpush*.c share: P-256
 * points to and from OpenSSL keys.  Not for other callers. */
#ifndef PL_WEBPUSH_INT_H
#define PL_WEBPUSH_INT_H

#include <openssl/evp.h>

#include "webpush.h"

/* The key of an uncompressed point (with its 32-byte private scalar when
 * priv is not NULL), checked to be on the curve (and the pair to match):
 * NULL when it is not. */
EVP_PKEY *pl_wp_point_key(const unsigned char pt[PL_WP_POINT_LEN], const unsigned char *priv);
/* The uncompressed public point of an EC key: 0 or -1. */
int pl_wp_key_point(const EVP_PKEY *k, unsigned char pt[PL_WP_POINT_LEN]);

#endif
