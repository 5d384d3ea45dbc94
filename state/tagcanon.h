/* tagcanon.h -- the canonical forms an X-Postlink-Tag (v=3) binds, in the
 * spirit of DKIM's "relaxed" canonicalisation (RFC 6376 3.4.2, 3.4.4), so
 * that what relays may change (line endings, folding, runs of white space,
 * white space at line ends, empty lines at the end) does not matter, and
 * what a reader sees does:
 *   header field: "name:value", the name in lower case without white
 *     space before the colon (obsolete "Subject :"), the value unfolded
 *     (every CR LF and LF removed), every run of SP and HTAB as one SP,
 *     none at either end;
 *   body: every line (ended by LF, CR LF, or the end of the body) with the
 *     white space (SP, HTAB) at its end removed and every other run of it
 *     as one SP, ended by CR LF; empty lines at the end of the body
 *     removed; the result hashed with SHA-256 (an empty body hashes "").
 * A CR not followed by LF is text in both (v=2 took it for white space, so
 * "a\rb" read like "a b"; a reader's program may show it as a line break).
 * The body arrives in chunks (a milter's body callback): the hash is kept
 * incrementally. */
#ifndef PL_TAGCANON_H
#define PL_TAGCANON_H

#include <stddef.h>

#define PL_BODYHASH_B64 44          /* base64 of SHA-256, with its "=" */

/* Canonical "name:value" of a header field (caller frees). */
char *pl_tag_hdr_canon(const char *name, const char *value);

struct pl_bodyhash;
struct pl_bodyhash *pl_bodyhash_new(void);
/* Feed n bytes of the body; 0, or -1 on an OpenSSL error. */
int pl_bodyhash_update(struct pl_bodyhash *b, const void *p, size_t n);
/* The base64 hash of what was fed (out: PL_BODYHASH_B64 + 1 bytes); 0 or -1.
 * The hash cannot be fed any more afterwards. */
int pl_bodyhash_final(struct pl_bodyhash *b, char *out);
void pl_bodyhash_free(struct pl_bodyhash *b);

#endif
