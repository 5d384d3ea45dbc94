/* tagsig.c -- X-Postlink-Tag signatures with OpenSSL's HMAC (tagsig.h). */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "strutil.h"
#include "tagsig.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int parse_line(struct pl_tagkey *key, char *line, const char **why)
{
    char *id, *hex, *flag, *extra, *save = NULL;
    size_t n;

    id = strtok_r(line, " \t", &save);
    hex = strtok_r(NULL, " \t", &save);
    flag = strtok_r(NULL, " \t", &save);
    extra = strtok_r(NULL, " \t", &save);
    memset(key, 0, sizeof(*key));
    if (id == NULL || hex == NULL || extra != NULL)
        return *why = "expected \"<key id> <hex secret> [sign|peer]\"", -1;
    if (strlen(id) >= sizeof(key->id) || strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                    "0123456789._-") != strlen(id))
        return *why = "key id: 1 to 31 of A-Z a-z 0-9 . _ -", -1;
    n = strlen(hex);
    if (n % 2 || n < 32 || n > 128)
        return *why = "secret: 32 to 128 hex digits (16 to 64 bytes)", -1;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval((unsigned char)hex[i]), lo = hexval((unsigned char)hex[i + 1]);
        if (hi < 0 || lo < 0)
            return *why = "secret: not hex", -1;
        key->secret[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    key->len = n / 2;
    snprintf(key->id, sizeof(key->id), "%s", id);
    if (flag == NULL)
        key->kind = PL_TAGKEY_OLD;
    else if (strcmp(flag, "sign") == 0)
        key->kind = PL_TAGKEY_SIGN;
    else if (strcmp(flag, "peer") == 0)
        key->kind = PL_TAGKEY_PEER;
    else
        return *why = "flag must be \"sign\" or \"peer\"", -1;
    return 0;
}

int pl_tagkeys_parse(struct pl_tagkeys *k, const char *text, const char *name, char *err, size_t errlen)
{
    char *copy = pl_xstrdup(text), *line, *next;
    int lineno = 0;
    const char *why = NULL;

    memset(k, 0, sizeof(*k));
    for (line = copy; line; line = next) {
        struct pl_tagkey key;
        char *p = line + strspn(line, " \t");
        if ((next = strchr(line, '\n')) != NULL)
            *next++ = '\0';
        lineno++;
        p[strcspn(p, "\r#")] = '\0';
        if (*p == '\0')
            continue;
        if (parse_line(&key, p, &why) != 0)
            goto bad;
        for (size_t i = 0; i < k->n; i++)
            if (strcmp(k->v[i].id, key.id) == 0) {
                why = "key id used twice";
                goto bad;
            }
        for (size_t i = 0; key.kind == PL_TAGKEY_SIGN && i < k->n; i++)
            if (k->v[i].kind == PL_TAGKEY_SIGN) {
                why = "more than one \"sign\" key";
                goto bad;
            }
        k->v = pl_xrealloc(k->v, (k->n + 1) * sizeof(*k->v));
        k->v[k->n++] = key;
    }
    for (size_t i = 0; i < k->n; i++)
        if (k->v[i].kind == PL_TAGKEY_SIGN)
            k->signer = &k->v[i];
    OPENSSL_cleanse(copy, strlen(text));
    free(copy);
    return 0;
bad:
    snprintf(err, errlen, "%s:%d: %s", name, lineno, why);
    OPENSSL_cleanse(copy, strlen(text));
    free(copy);
    pl_tagkeys_free(k);
    return -1;
}

int pl_tagkeys_load(struct pl_tagkeys *k, const char *path, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "r");
    char buf[16384];
    size_t n;
    int rc;

    memset(k, 0, sizeof(*k));
    if (fp == NULL) {
        snprintf(err, errlen, "%s: cannot open: %m", path);
        return -1;
    }
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    rc = pl_tagkeys_parse(k, buf, path, err, errlen);
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

void pl_tagkeys_free(struct pl_tagkeys *k)
{
    if (k->v)
        OPENSSL_cleanse(k->v, k->n * sizeof(*k->v));
    free(k->v);
    memset(k, 0, sizeof(*k));
}

/* The bound names, in the order the signature takes them. */
static const char *const bound[] = {
    "from", "reply-to", "sender", "subject", "to", "cc", "date", "in-reply-to", "references",
    "mime-version", "content-type", "content-transfer-encoding",
};

int pl_tag_bound(const char *name)
{
    size_t n = strlen(name);

    while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'))
        n--;                                   /* "Reply-To :" (obsolete syntax) */
    for (size_t f = 0; f < sizeof(bound) / sizeof(bound[0]); f++)
        if (n == strlen(bound[f]) && strncasecmp(name, bound[f], n) == 0)
            return 1;
    return 0;
}

static int mac(const struct pl_tagkey *key, int64_t t, const struct pl_tagin *in,
               unsigned char *out, unsigned *outlen)
{
    struct pl_strbuf b = {0};
    int ok;

    pl_strbuf_addf(&b, "v=3\nk=%s\nt=%" PRId64 "\na=%s\nm=%s\ni=%s\nf=%s\n", key->id, t,
                   in->account, in->mailid, in->msgid, in->from);
    for (size_t f = 0; f < sizeof(bound) / sizeof(bound[0]); f++) {
        size_t len = strlen(bound[f]), n = 0;
        for (size_t i = 0; i < in->nhdrs; i++)
            if (strncmp(in->hdrs[i], bound[f], len) == 0 && in->hdrs[i][len] == ':') {
                pl_strbuf_adds(&b, in->hdrs[i]);
                pl_strbuf_addc(&b, '\n');
                n++;
            }
        if (n == 0) {                          /* signed as absent */
            pl_strbuf_adds(&b, bound[f]);
            pl_strbuf_addc(&b, '\n');
        }
    }
    pl_strbuf_addf(&b, "bh=%s\n", in->bh);
    ok = HMAC(EVP_sha256(), key->secret, (int)key->len, (const unsigned char *)b.s, b.len, out,
              outlen) != NULL;
    pl_strbuf_free(&b);
    return ok ? 0 : -1;
}

int pl_tag_make(const struct pl_tagkeys *k, int64_t t, const struct pl_tagin *in, char *out,
                size_t outlen)
{
    unsigned char m[EVP_MAX_MD_SIZE], b64[EVP_MAX_MD_SIZE * 2];
    unsigned mlen = 0;
    int n;

    if (k->signer == NULL || strlen(in->bh) != PL_BODYHASH_B64 || mac(k->signer, t, in, m, &mlen) != 0)
        return -1;
    EVP_EncodeBlock(b64, m, (int)mlen);
    n = snprintf(out, outlen, "v=3; k=%s; t=%" PRId64 "; bh=%s; s=%s", k->signer->id, t, in->bh,
                 (char *)b64);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* "name=value" items separated by ";" and optional white space (a folded
 * header keeps its CR LF). */
static int item(const char *value, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = value;
    while (*p) {
        p += strspn(p, " \t\r\n;");
        if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t n = strcspn(p + nl + 1, "; \t\r\n");
            if (n == 0 || n >= outlen)
                return -1;
            memcpy(out, p + nl + 1, n);
            out[n] = '\0';
            return 0;
        }
        p += strcspn(p, ";");
    }
    return -1;
}

#define SIG_B64 44                     /* base64 of 32 bytes, one "=" of padding */

int pl_tag_verify(const struct pl_tagkeys *k, const char *value, const struct pl_tagin *in,
                  int64_t *t, const struct pl_tagkey **key, const char **why)
{
    char v[8], id[32], ts[24], s[128], bh[128];
    unsigned char want[EVP_MAX_MD_SIZE], wantb64[64], got[128];
    unsigned wlen = 0;
    const struct pl_tagkey *kk = NULL;
    struct pl_tagin signed_in;
    char *end;

    if (strlen(value) > 512 || item(value, "v", v, sizeof(v)) != 0)
        return *why = "malformed tag", -1;
    if (strcmp(v, "1") == 0)
        return *why = "tag version 1 (binds neither body nor Subject/To/Cc/Date): refused", -1;
    if (strcmp(v, "2") == 0)
        return *why = "tag version 2 (binds neither the whole From nor Reply-To, Sender, "
                      "MIME and thread fields): refused", -1;
    if (strcmp(v, "3") != 0 || item(value, "k", id, sizeof(id)) != 0 ||
        item(value, "t", ts, sizeof(ts)) != 0 || item(value, "bh", bh, sizeof(bh)) != 0 ||
        item(value, "s", s, sizeof(s)) != 0)
        return *why = "malformed tag", -1;
    *t = strtoll(ts, &end, 10);
    if (*end != '\0' || *t <= 0)
        return *why = "malformed time", -1;
    for (size_t i = 0; i < k->n; i++)
        if (strcmp(k->v[i].id, id) == 0)
            kk = &k->v[i];
    if (kk == NULL)
        return *why = "unknown key", -1;
    if (strlen(s) != SIG_B64 || s[SIG_B64 - 1] != '=' ||
        EVP_DecodeBlock(got, (const unsigned char *)s, SIG_B64) != 33)
        return *why = "malformed signature", -1;     /* 32 bytes + 1 of padding */
    if (strlen(bh) != PL_BODYHASH_B64)
        return *why = "malformed body hash", -1;
    /* the signature over the tag's own bh=, the canonical base64 text
     * compared in full and in constant time (exactly one spelling
     * verifies); then that bh= against this body */
    signed_in = *in;
    signed_in.bh = bh;
    if (mac(kk, *t, &signed_in, want, &wlen) != 0 || wlen != 32 ||
        EVP_EncodeBlock(wantb64, want, 32) != SIG_B64 || CRYPTO_memcmp(wantb64, s, SIG_B64) != 0)
        return *why = "bad signature", -1;
    if (strlen(in->bh) != PL_BODYHASH_B64 || CRYPTO_memcmp(bh, in->bh, PL_BODYHASH_B64) != 0)
        return *why = "the body changed since it was tagged", -1;
    *key = kk;
    return 0;
}
