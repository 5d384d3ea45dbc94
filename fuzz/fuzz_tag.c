/* fuzz_tag.c -- libFuzzer target: X-Postlink-Tag (lib/tagsig.c).  The
 * input, split at LF, is a header value and the fields it is checked
 * against (account, mail-id, Message-ID, From); it is verified against a
 * fixed key set, the whole input is parsed as a tag_keys_file, and a tag
 * made for the same fields must verify while one with any base64
 * character of its signature changed, or checked against a changed
 * field, must not. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size), *f[5] = {0}, *p = text, tag[512];
    static const char *const def[5] = {"v=1; k=k1; t=1; s=x", "alice@xmpp.example",
        "abcdefghijklmnopqrstuvwxyz", "<m1@example.org>", "alice@example.org"};
    const struct pl_tagkey *key;
    struct pl_tagkeys parsed;
    const char *why;
    char err[256];
    int64_t t;

    for (int i = 0; i < 5; i++) {
        f[i] = p ? p : (char *)def[i];
        if (p != NULL && (p = strchr(p, '\n')) != NULL)
            *p++ = '\0';
    }
    (void)pl_tag_verify(&keys, f[0], f[1], f[2], f[3], f[4], &t, &key, &why);

    char *keytext = fuzz_strndup(data, size);
    if (pl_tagkeys_parse(&parsed, keytext, "fuzz", err, sizeof(err)) == 0) {
        if (parsed.n > 0 && parsed.v == NULL)
            abort();
        pl_tagkeys_free(&parsed);
    }
    free(keytext);

    if (pl_tag_make(&keys, 1795424400, f[1], f[2], f[3], f[4], tag, sizeof(tag)) == 0) {
        char *s = strstr(tag, "s="), *c;
        static const char b64[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        if (pl_tag_verify(&keys, tag, f[1], f[2], f[3], f[4], &t, &key, &why) != 0 ||
            t != 1795424400 || s == NULL || strlen(s) != 46)
            abort();                          /* our own tag must verify */
        /* the tag binds every field: one more byte in any of them fails */
        for (int i = 1; i < 5; i++) {
            size_t n = strlen(f[i]);
            char *g = malloc(n + 2);
            const char *h[5] = {tag, f[1], f[2], f[3], f[4]};
            if (g == NULL)
                abort();
            memcpy(g, f[i], n);
            memcpy(g + n, "x", 2);
            h[i] = g;
            if (pl_tag_verify(&keys, tag, h[1], h[2], h[3], h[4], &t, &key, &why) == 0)
                abort();
            free(g);
        }
        c = s + 2 + (size ? data[0] % 43 : 0);    /* one of the 43 characters before '=' */
        *c = b64[(strchr(b64, *c) - b64 + 1 + (size > 1 ? data[1] % 63 : 0)) % 64];
        if (pl_tag_verify(&keys, tag, f[1], f[2], f[3], f[4], &t, &key, &why) == 0)
            abort();                          /* a changed signature verified */
    }
    free(text);
    return 0;
}
