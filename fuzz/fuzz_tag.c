/* fuzz_tag.c -- libFuzzer target: X-Postlink-Tag (state/tagsig.c) and the
 * canonical forms it binds (state/tagcanon.c).  The input, split at LF, is
 * a header value, the fields it is checked against (account, mail-id,
 * Message-ID, From address), one header field "Name: value" and, after
 * that, the body.  The tag is verified against a fixed key set, the whole
 * input is parsed as a tag_keys_file, and a tag made for the same fields
 * must verify while one checked against a changed field, a changed body
 * hash or with any base64 character of its signature changed must not. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "tagcanon.h"
#include "tagsig.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pl_tagkeys keys;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];
    (void)argc;
    (void)argv;
    if (pl_tagkeys_parse(&keys,
                         "k1 000102030405060708090a0b0c0d0e0f sign\n"
                         "old 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
                         "peer.example fedcba9876543210fedcba9876543210 peer\n",
                         "fuzz-keys", err, sizeof(err)) != 0)
        abort();
    return 0;
}

/* The canonical form of "Name: value" (or of the line as a value of
 * Subject when it has no colon); caller frees. */
static char *field_of(const char *line)
{
    const char *colon = strchr(line, ':');
    char *name, *c;
    if (colon == NULL || colon == line)
        return pl_tag_hdr_canon("Subject", line);
    name = fuzz_strndup((const uint8_t *)line, (size_t)(colon - line));
    c = pl_tag_hdr_canon(name, colon + 1);
    free(name);
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size), *f[6] = {0}, *p = text, tag[700];
    static const char *const def[6] = {"v=3; k=k1; t=1; bh=x; s=x", "alice@xmpp.example",
        "abcdefghijklmnopqrstuvwxyz", "<m1@example.org>", "alice@example.org",
        "Subject: lunch"};
    const char *body, *why;
    char bh[PL_BODYHASH_B64 + 1], bh2[PL_BODYHASH_B64 + 1];
    const struct pl_tagkey *key;
    struct pl_tagkeys parsed;
    struct pl_bodyhash *b;
    char err[256], *hdr[1];
    int64_t t;

    for (int i = 0; i < 6; i++) {
        f[i] = p ? p : (char *)def[i];
        if (p != NULL && (p = strchr(p, '\n')) != NULL)
            *p++ = '\0';
    }
    body = p ? p : "";
    if ((b = pl_bodyhash_new()) == NULL)
        abort();
    /* the body in two chunks, split where the input says */
    size_t blen = strlen(body), cut = size ? data[0] % (blen + 1) : 0;
    if (pl_bodyhash_update(b, body, cut) != 0 || pl_bodyhash_update(b, body + cut, blen - cut) != 0 ||
        pl_bodyhash_final(b, bh) != 0)
        abort();
    pl_bodyhash_free(b);
    hdr[0] = field_of(f[5]);
    struct pl_tagin in = {f[1], f[2], f[3], f[4], hdr, 1, bh};
    (void)pl_tag_verify(&keys, f[0], &in, &t, &key, &why);

    char *keytext = fuzz_strndup(data, size);
    if (pl_tagkeys_parse(&parsed, keytext, "fuzz", err, sizeof(err)) == 0) {
        if (parsed.n > 0 && parsed.v == NULL)
            abort();
        pl_tagkeys_free(&parsed);
    }
    free(keytext);

    if (pl_tag_make(&keys, 1795424400, &in, tag, sizeof(tag)) == 0) {
        char *s = strstr(tag, "; s="), *c;   /* not an "s=" inside the bh= value */
        static const char b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        if (pl_tag_verify(&keys, tag, &in, &t, &key, &why) != 0 || t != 1795424400 ||
            s == NULL || strlen(s += 2) != 46)
            abort();                          /* our own tag must verify */
        /* the tag binds every field: one more byte in any of them fails */
        for (int i = 1; i < 5; i++) {
            size_t n = strlen(f[i]);
            char *g = malloc(n + 2);
            struct pl_tagin h = in;
            const char **slot[5] = {NULL, &h.account, &h.mailid, &h.msgid, &h.from};
            if (g == NULL)
                abort();
            memcpy(g, f[i], n);
            memcpy(g + n, "x", 2);
            *slot[i] = g;
            if (pl_tag_verify(&keys, tag, &h, &t, &key, &why) == 0)
                abort();
            free(g);
        }
        /* ... a bound header field changed by one byte, or the body hash */
        char *hcolon = hdr[0] ? strchr(hdr[0], ':') : NULL;
        char *hname = hcolon ? fuzz_strndup((const uint8_t *)hdr[0], (size_t)(hcolon - hdr[0])) : NULL;
        int bound = hname != NULL && pl_tag_bound(hname);
        free(hname);
        if (bound) {
            size_t n = strlen(hdr[0]);
            char *g = malloc(n + 2), *gh[1];
            struct pl_tagin h = in;
            if (g == NULL)
                abort();
            memcpy(g, hdr[0], n);
            memcpy(g + n, "x", 2);
            gh[0] = g;
            h.hdrs = gh;
            if (pl_tag_verify(&keys, tag, &h, &t, &key, &why) == 0)
                abort();                      /* a changed bound field verified */
            free(g);
        }
        memcpy(bh2, bh, sizeof(bh2));
        bh2[0] = bh2[0] == 'A' ? 'B' : 'A';
        struct pl_tagin hb = in;
        hb.bh = bh2;
        if (pl_tag_verify(&keys, tag, &hb, &t, &key, &why) == 0)
            abort();                          /* another body verified */
        c = s + 2 + (size ? data[0] % 43 : 0);    /* one of the 43 characters before '=' */
        *c = b64[(strchr(b64, *c) - b64 + 1 + (size > 1 ? data[1] % 63 : 0)) % 64];
        if (pl_tag_verify(&keys, tag, &in, &t, &key, &why) == 0)
            abort();                          /* a changed signature verified */
    }
    free(hdr[0]);
    free(text);
    return 0;
}
