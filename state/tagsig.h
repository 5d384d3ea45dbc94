/* tagsig.h -- the X-Postlink-Tag signature (capability 4):
 *   X-Postlink-Tag: v=3; k=<key id>; t=<unix time>; bh=<base64 SHA-256 of
 *                   the body>; s=<base64 HMAC-SHA256>
 * over, one per line ending in LF,
 *   v=3 / k=<id> / t=<t> / a=<account> / m=<mail-id> / i=<message-id> /
 *   f=<from address> / then, for each bound name in this order: from,
 *   reply-to, sender, subject, to, cc, date, in-reply-to, references,
 *   mime-version, content-type, content-transfer-encoding: every field of
 *   that name in its canonical form "name:value" (tagcanon.h) in the order
 *   of the message, or, if the mail has none, the name alone ("reply-to",
 *   no colon: signed as absent, so adding one later breaks the tag) /
 *   bh=<body hash>
 * (account: the bare JID of Jabber-ID, lower case; message-id with its
 * angle brackets; from address: the From address, lower case; the body
 * hashed canonically, tagcanon.h).  So the tag binds what the recipient
 * reads and whom a reply goes to: the From display name, Reply-To, Sender,
 * Subject, To, Cc, Date, the thread (In-Reply-To, References), how the
 * body is rendered (MIME-Version, Content-Type, Content-Transfer-Encoding)
 * and the body; any of them changed, added or removed shows nothing.
 * Version 1 tags (no body, no header fields) and version 2 tags (only
 * Subject, To, Cc, Date and the bare From address) are refused.
 * Keys come from tag_keys_file, one per line "<id> <hex secret> [flag]":
 * flag "sign" is this site's current key (one only), no flag an older key
 * of this site (verify only, for rotation), "peer" a trusted peer site's
 * key.  Secrets are 16 to 64 bytes (32 to 128 hex digits). */
#ifndef PL_TAGSIG_H
#define PL_TAGSIG_H

#include <stddef.h>
#include <stdint.h>

#include "tagcanon.h"

enum pl_tagkey_kind { PL_TAGKEY_OLD, PL_TAGKEY_SIGN, PL_TAGKEY_PEER };

struct pl_tagkey {
    char id[32];
    unsigned char secret[64];
    size_t len;
    enum pl_tagkey_kind kind;
};

struct pl_tagkeys {
    struct pl_tagkey *v;
    size_t n;
    const struct pl_tagkey *signer;    /* NULL: this site only verifies */
};

/* Load the file; 0, or -1 with "path:line: reason" in err. */
int pl_tagkeys_load(struct pl_tagkeys *k, const char *path, char *err, size_t errlen);
/* The same from text (for the tests). */
int pl_tagkeys_parse(struct pl_tagkeys *k, const char *text, const char *name, char *err, size_t errlen);
void pl_tagkeys_free(struct pl_tagkeys *k);

/* Nonzero if a tag binds header fields of this name (any letter case,
 * white space before the colon ignored). */
int pl_tag_bound(const char *name);

/* What a tag binds: the fields of the mail it is in. */
struct pl_tagin {
    const char *account, *mailid, *msgid, *from;
    char *const *hdrs;          /* canonical fields (pl_tag_hdr_canon) in the order of
                                 * the message; only the bound names count */
    size_t nhdrs;
    const char *bh;             /* the body's hash (pl_bodyhash_final) */
};

/* The header value for a mail, signed with the signing key; 0 or -1. */
int pl_tag_make(const struct pl_tagkeys *k, int64_t t, const struct pl_tagin *in, char *out,
                size_t outlen);

/* Check a header value against the mail's fields.  0 with the time and the
 * key that signed it, or -1 with the reason in *why. */
int pl_tag_verify(const struct pl_tagkeys *k, const char *value, const struct pl_tagin *in,
                  int64_t *t, const struct pl_tagkey **key, const char **why);

#endif
