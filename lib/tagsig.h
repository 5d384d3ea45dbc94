/* tagsig.h -- the X-Postlink-Tag signature (capability 4):
 *   X-Postlink-Tag: v=1; k=<key id>; t=<unix time>; s=<base64 HMAC-SHA256>
 * over "v=1\nk=<id>\nt=<t>\na=<account>\nm=<mail-id>\ni=<message-id>\nf=<from>\n"
 * (account: the bare JID of Jabber-ID, lower case; message-id with its
 * angle brackets; from: the From address, lower case).
 * Keys come from tag_keys_file, one per line "<id> <hex secret> [flag]":
 * flag "sign" is this site's current key (one only), no flag an older key
 * of this site (verify only, for rotation), "peer" a trusted peer site's
 * key.  Secrets are 16 to 64 bytes (32 to 128 hex digits). */
#ifndef PL_TAGSIG_H
#define PL_TAGSIG_H

#include <stddef.h>
#include <stdint.h>

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

/* The header value for a mail, signed with the signing key; 0 or -1. */
int pl_tag_make(const struct pl_tagkeys *k, int64_t t, const char *account, const char *mailid,
                const char *msgid, const char *from, char *out, size_t outlen);

/* Check a header value against the mail's fields.  0 with the time and the
 * key that signed it, or -1 with the reason in *why. */
int pl_tag_verify(const struct pl_tagkeys *k, const char *value, const char *account,
                  const char *mailid, const char *msgid, const char *from, int64_t *t,
                  const struct pl_tagkey **key, const char **why);

#endif
