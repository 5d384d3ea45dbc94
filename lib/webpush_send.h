/* webpush_send.h -- one Web Push message to one subscription (RFC 8030 5):
 * the payload encrypted for the device (lib/webpush.h), POSTed to its
 * endpoint with TTL, Topic and Urgency and the VAPID Authorization, over
 * one libcurl easy handle; http and https only, no redirects. */
#ifndef PL_WEBPUSH_SEND_H
#define PL_WEBPUSH_SEND_H

#include <stddef.h>

#include "webpush.h"

/* What the push service's answer means for the sender. */
enum pl_wp_result {
    PL_WP_BADARG = -1,      /* nothing sent: bad input (err says which) */
    PL_WP_SENT = 0,         /* 201 Created (or another 2xx): accepted */
    PL_WP_GONE = 1,         /* 404, 410: the subscription is gone, drop it */
    PL_WP_TEMP = 2,         /* no answer, time-out, 429 or 5xx: try again later */
    PL_WP_REFUSED = 3,      /* any other status (400, 401, 403, 413, ...): this
                               message or this key is refused; err has the body */
};

/* The result for an HTTP status (0 = no answer). */
enum pl_wp_result pl_webpush_status_result(long status);

/* Sends payload (len <= PL_WP_PLAIN_MAX bytes) to sub, signed with key
 * (subject: the VAPID "sub", mailto: or https:), TTL ttl seconds; topic
 * (NULL = none) at most 32 characters of the base64url alphabet; urgency
 * NULL or "very-low", "low", "normal", "high"; timeout_ms for the whole
 * request (0 = 30 s); ca_file NULL = the system's CAs.  *http_status (may
 * be NULL) gets the status, 0 when there was no answer.  err says what
 * went wrong (with the start of the service's answer) for every result but
 * PL_WP_SENT. */
enum pl_wp_result pl_webpush_send(const struct pl_webpush_sub *sub, const pl_vapid_key *key,
                                  const char *subject, const void *payload, size_t len,
                                  unsigned ttl, const char *topic, const char *urgency,
                                  unsigned timeout_ms, const char *ca_file, long *http_status,
                                  char *err, size_t errlen);

#endif
