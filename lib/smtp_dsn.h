/* smtp_dsn.h -- syntax checks for the ESMTP parameters postlink passes
 * through unchanged between its LMTP server and its SMTP client: the DSN
 * parameters of RFC 3461 (NOTIFY, ORCPT, RET, ENVID, all xtext-based) and
 * BODY (RFC 6152).  Pure functions, no I/O. */
#ifndef PL_SMTP_DSN_H
#define PL_SMTP_DSN_H

#include <stddef.h>

#define PL_DSN_ENVID_MAX 100        /* RFC 3461 4.4 */
#define PL_DSN_ORCPT_MAX 500        /* RFC 3461 4.2 */

/* xtext (RFC 3461 4): "!".."~" except "+" and "=", or "+" and two
 * upper-case hex digits; at least one character and at most max bytes. */
int pl_dsn_xtext_ok(const char *s, size_t len, size_t max);
/* NOTIFY value: "NEVER", or a comma list of SUCCESS, FAILURE, DELAY, each
 * at most once (any case). */
int pl_dsn_notify_ok(const char *s, size_t len);
/* ORCPT value: addr-type ";" xtext, addr-type an atom (RFC 5322). */
int pl_dsn_orcpt_ok(const char *s, size_t len);
/* RET value: FULL or HDRS (any case). */
int pl_dsn_ret_ok(const char *s, size_t len);

/* xtext-encodes s (for XCLIENT values) into out; returns the length or
 * (size_t)-1 when it does not fit (out holds outlen-1 bytes and a NUL). */
size_t pl_xtext_encode(const char *s, char *out, size_t outlen);

#endif
