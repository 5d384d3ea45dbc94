/* test_tag.c -- unit tests of messenger tagging (capability 4): the tag
 * keys file and X-Postlink-Tag signatures (state/tagsig.c, checked against
 * an HMAC computed here with OpenSSL directly), JIDs, links, mail-ids and
 * the presence cache in a real temporary store (state/messenger.c), and
 * presence lookups against a small forked socket server
 * (state/presence_client.c). */
#include "config.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "log.h"
#include "messenger.h"
#include "presence_client.h"
#include "tagsig.h"
#include "testdir.h"

#define T0 1795424400LL
#define ACC "alice@example.com"
#define MID "abcdefghijklmnopqrstuvwxyz"
#define MID2 "abcdefghijklmnopqrstuvwxy2"
#define MSGID "<m1@example.com>"
#define FROM "alice@example.com"
#define JID "alice@jabber.example"
#define DATE "Mon, 23 Nov 2026 09:00:00 +0000"
#define H32 "000102030405060708090a0b0c0d0e0f"
#define H64 "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF"
#define H128 H64 H64
/* the body and its hash, from "printf BODY | openssl dgst -sha256 -binary | base64" */
#define BODY "Hi Bob,\r\n\r\nSee you.\r\n"
#define BH "1Amed8oA9lbVbvcv6jEeD5ebbIb9SrzQGDVCEtKw2Fs="
#define SUBJ "subject:Lunch on Friday"
#define TO "to:bob@example.com"
#define CC "cc:carol@example.com"
#define DATEH "date:" DATE
#define FROMH "from:Alice <alice@example.com>"
#define MIMEV "mime-version:1.0"
#define CTYPE "content-type:text/plain; charset=utf-8"
#define KEYS "# postlink tag keys\n\nsite-2025 " H32 "\n  site-2026\t" H64 \
    " sign   # current\r\npeer.example " H128 " peer\n"

/* The fields of the mail the tests sign: canonical Date, From, Subject,
 * To, Cc, MIME-Version, Content-Type (in the order of a message that has
 * Date first; no Reply-To, Sender, Content-Transfer-Encoding, In-Reply-To
 * or References) and BODY's hash. */
static char *hdrs0[] = {DATEH, FROMH, SUBJ, TO, CC, MIMEV, CTYPE};

static struct pl_tagin input(void)
{
    struct pl_tagin in = {ACC, MID, MSGID, FROM, hdrs0, 7, BH};
    return in;
}

/* ---- the keys file -------------------------------------------------------- */

static void parse_ok(struct pl_tagkeys *k, const char *text)
{
    char err[256] = "";
    if (pl_tagkeys_parse(k, text, "keys", err, sizeof(err)) != 0)
        fail_msg("parse: %s", err);
}

static void test_keys_parse(void **state)
{
    static const struct { const char *id; enum pl_tagkey_kind kind; size_t len; unsigned last; } want[] = {
        {"site-2025", PL_TAGKEY_OLD, 16, 0x0f}, {"site-2026", PL_TAGKEY_SIGN, 32, 0xff},
        {"peer.example", PL_TAGKEY_PEER, 64, 0xff}};
    struct pl_tagkeys k;
    char out[256];
    (void)state;
    parse_ok(&k, KEYS);
    assert_int_equal(k.n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(k.v[i].id, want[i].id);
        assert_int_equal(k.v[i].kind, want[i].kind);
        assert_int_equal(k.v[i].len, want[i].len);
        assert_int_equal(k.v[i].secret[0], 0);
        assert_int_equal(k.v[i].secret[want[i].len - 1], want[i].last);   /* upper-case hex too */
    }
    assert_ptr_equal(k.signer, &k.v[1]);
    pl_tagkeys_free(&k);
    assert_null(k.v);
    parse_ok(&k, "a " H32 "\nb " H32 " peer\n");          /* verifying only */
    assert_int_equal(k.n, 2);
    assert_null(k.signer);
    {
        struct pl_tagin in = input();
        assert_int_equal(pl_tag_make(&k, T0, &in, out, sizeof(out)), -1);
    }
    pl_tagkeys_free(&k);
    parse_ok(&k, "abcdefghijabcdefghijabcdefghija " H32 "\nZ_9.- " H128 " sign\n");   /* limits */
    assert_int_equal(k.n, 2);
    pl_tagkeys_free(&k);
}

static void test_keys_errors(void **state)
{
    static const struct { const char *text, *err; } bad[] = {
        {"a " H32 "\n\n# c\na " H64 "\n", "keys:4: key id used twice"},
        {"a " H32 "0\n", "keys:1: secret: 32 to 128"},
        {"a 000102030405060708090a0b0c0d0e\n", "keys:1: secret: 32 to 128"},
        {"# x\na " H128 "00\n", "keys:2: secret: 32 to 128"},
        {"a 000102030405060708090a0b0c0d0eXY\n", "keys:1: secret: not hex"},
        {"a " H32 " signer\n", "keys:1: flag must be"},
        {"a " H32 " sign extra\n", "keys:1: expected"},
        {"\n\nlonely\n", "keys:3: expected"},
        {"a/b " H32 "\n", "keys:1: key id:"},
        {"a@b " H32 "\n", "keys:1: key id:"},
        {"abcdefghijabcdefghijabcdefghijab " H32 "\n", "keys:1: key id:"},     /* 32 bytes */
        {"a " H32 " sign\nb " H64 " sign\n", "keys:2: more than one \"sign\" key"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct pl_tagkeys k;
        char err[256] = "";
        int rc = pl_tagkeys_parse(&k, bad[i].text, "keys", err, sizeof(err));
        if (rc != -1)
            fail_msg("case %zu accepted", i);
        if (strncmp(err, bad[i].err, strlen(bad[i].err)) != 0)
            fail_msg("case %zu: \"%s\", want \"%s...\"", i, err, bad[i].err);
        assert_null(k.v);
        assert_int_equal(k.n, 0);
    }
}

/* ---- signatures ----------------------------------------------------------- */

static void test_tag_known_hmac(void **state)
{
    /* every bound name in its fixed order; a name the mail lacks as the
     * name alone (signed as absent) */
    static const char text[] = "v=3\nk=site-2026\nt=1795424400\na=" ACC "\nm=" MID "\ni=" MSGID
                               "\nf=" FROM "\n" FROMH "\nreply-to\nsender\n" SUBJ "\n" TO "\n" CC "\n"
                               DATEH "\nin-reply-to\nreferences\n" MIMEV "\n" CTYPE
                               "\ncontent-transfer-encoding\nbh=" BH "\n";
    unsigned char secret[32], md[EVP_MAX_MD_SIZE], sig[128];
    unsigned mdlen = 0;
    char want[256], out[256];
    struct pl_tagkeys k;
    struct pl_tagin in = input();
    (void)state;
    for (int i = 0; i < 32; i++)
        secret[i] = (unsigned char)strtoul((char[]){H64[2 * i], H64[2 * i + 1], 0}, NULL, 16);
    assert_non_null(HMAC(EVP_sha256(), secret, 32, (const unsigned char *)text, strlen(text), md, &mdlen));
    assert_int_equal(mdlen, 32);
    EVP_EncodeBlock(sig, md, (int)mdlen);
    snprintf(want, sizeof(want), "v=3; k=site-2026; t=%lld; bh=%s; s=%s", T0, BH, (char *)sig);
    parse_ok(&k, KEYS);
    assert_int_equal(pl_tag_make(&k, T0, &in, out, sizeof(out)), 0);
    assert_string_equal(out, want);
    assert_int_equal(pl_tag_make(&k, T0, &in, out, 100), -1);   /* too small */
    in.bh = "short";
    assert_int_equal(pl_tag_make(&k, T0, &in, out, sizeof(out)), -1);
    pl_tagkeys_free(&k);
}

/* "ok" (and *key) or why pl_tag_verify refused value for these fields. */
static const char *verify_in(const struct pl_tagkeys *k, const char *value, const struct pl_tagin *in,
                             int64_t *t, const struct pl_tagkey **key)
{
    int64_t t0 = 0;
    const struct pl_tagkey *k0 = NULL;
    const char *why = NULL;
    int rc = pl_tag_verify(k, value, in, t ? t : &t0, key ? key : &k0, &why);
    if (rc == 0)
        return "ok";
    assert_int_equal(rc, -1);
    assert_non_null(why);
    return why;
}

static const char *verify(const struct pl_tagkeys *k, const char *value, const char *acc, const char *mid,
                          const char *msgid, const char *from, int64_t *t, const struct pl_tagkey **key)
{
    struct pl_tagin in = input();
    in.account = acc;
    in.mailid = mid;
    in.msgid = msgid;
    in.from = from;
    return verify_in(k, value, &in, t, key);
}

#define VERIFY(v) verify(&k, v, ACC, MID, MSGID, FROM, NULL, NULL)

static void test_tag_verify(void **state)
{
    static const struct { const char *pre; int n; const char *post, *why; } c[] = {
        /* value: pre, the first n characters of the good signature, post */
        {"v=3; k=site-2026; t=1795424401; bh=" BH "; s=", 44, "", "bad signature"},
        {"v=3; k=site-2027; t=1795424400; bh=" BH "; s=", 44, "", "unknown key"},
        {"v=3; k=site-2026; t=1795424400; bh=" BH "; s=", 40, "", "malformed signature"},
        {"v=3; k=site-2026; t=1795424400; bh=" BH "; s=", 43, "!", "malformed signature"},
        {"v=3; k=site-2026; t=1795424400; bh=" BH "; s=", 43, "A", "malformed signature"},   /* padding respelled */
        {"garbage", 0, "", "malformed tag"}, {"", 0, "", "malformed tag"},
        {"v=4; k=site-2026; t=1795424400; bh=" BH "; s=", 44, "", "malformed tag"},
        {"v=3; k=site-2026; bh=" BH "; s=", 44, "", "malformed tag"},
        {"v=3; k=site-2026; t=1795424400; s=", 44, "", "malformed tag"},            /* no bh= */
        {"v=3; k=site-2026; t=1795424400; bh=AAAA; s=", 44, "", "malformed body hash"},
        {"v=3; k=site-2026; t=12ab; bh=" BH "; s=", 44, "", "malformed time"},
        {"v=3; k=site-2026; t=-5; bh=" BH "; s=", 44, "", "malformed time"},
        /* a bh= for another body, with the good signature: the signature covers bh= */
        {"v=3; k=site-2026; t=1795424400; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; s=", 44, "",
         "bad signature"},
        {"  s=", 44, " ;t=1795424400;\t bh=" BH "; k=site-2026 ;  v=3 ", "ok"},   /* other order, more space */
    };
    struct pl_tagkeys k;
    char v[256], w[400], *s;
    int64_t t = 0;
    const struct pl_tagkey *key = NULL;
    (void)state;
    parse_ok(&k, KEYS);
    {
        struct pl_tagin in = input();
        assert_int_equal(pl_tag_make(&k, T0, &in, v, sizeof(v)), 0);
    }
    assert_string_equal(verify(&k, v, ACC, MID, MSGID, FROM, &t, &key), "ok");
    assert_int_equal(t, T0);
    assert_ptr_equal(key, k.signer);
    /* any field changed */
    assert_string_equal(verify(&k, v, "bob@example.com", MID, MSGID, FROM, 0, 0), "bad signature");
    assert_string_equal(verify(&k, v, ACC, MID2, MSGID, FROM, 0, 0), "bad signature");
    assert_string_equal(verify(&k, v, ACC, MID, "<m2@example.com>", FROM, 0, 0), "bad signature");
    assert_string_equal(verify(&k, v, ACC, MID, MSGID, "mallory@example.com", 0, 0), "bad signature");
    s = strstr(v, "; s=") + 4;
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        snprintf(w, sizeof(w), "%s%.*s%s", c[i].pre, c[i].n, s, c[i].post);
        if (strcmp(VERIFY(w), c[i].why) != 0)
            fail_msg("\"%s\": %s, want %s", w, VERIFY(w), c[i].why);
    }
    pl_tagkeys_free(&k);
}

/* Every character of the signature counts (a comparison of a prefix would
 * accept forged tags): each one changed to every other base64 character,
 * the last one (which carries only two bits) included, is refused. */
static void test_tag_every_position(void **state)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    struct pl_tagkeys k;
    struct pl_tagin in = input();
    char v[256], w[256], *s;
    size_t n, refused = 0;
    (void)state;
    parse_ok(&k, KEYS);
    assert_int_equal(pl_tag_make(&k, T0, &in, v, sizeof(v)), 0);
    s = strstr(v, "; s=") + 4;
    n = strlen(s);
    assert_int_equal(n, 44);
    for (size_t pos = 0; pos < n - 1; pos++)
        for (const char *c = b64; *c; c++) {
            if (*c == s[pos])
                continue;
            snprintf(w, sizeof(w), "%s", v);
            w[(size_t)(s - v) + pos] = *c;
            if (strcmp(verify_in(&k, w, &in, NULL, NULL), "ok") == 0)
                fail_msg("signature with position %zu changed to '%c' accepted: %s", pos, *c, w);
            refused++;
        }
    assert_int_equal(refused, 43 * 63);
    snprintf(w, sizeof(w), "%s", v);                 /* the padding itself */
    w[strlen(w) - 1] = 'A';
    assert_string_equal(verify_in(&k, w, &in, NULL, NULL), "malformed signature");
    pl_tagkeys_free(&k);
}

/* What the recipient reads is bound: Subject, To, Cc, Date and the body.
 * Each changed, added or removed shows nothing; white space, folding,
 * letter case of the names and the order of different fields do not matter
 * (relays change them). */
static void test_tag_bound_fields(void **state)
{
#define B FROMH, MIMEV, CTYPE                 /* the rest of hdrs0 */
    static const struct { const char *h[10]; const char *why; } c[] = {
        {{"subject:Lunch on Saturday", TO, CC, DATEH, B}, "bad signature"},
        {{SUBJ, "to:mallory@example.com", CC, DATEH, B}, "bad signature"},
        {{SUBJ, TO, "cc:mallory@example.com", DATEH, B}, "bad signature"},
        {{SUBJ, TO, CC, "date:Tue, 24 Nov 2026 09:00:00 +0000", B}, "bad signature"},
        {{TO, CC, DATEH, B}, "bad signature"},                               /* Subject removed */
        {{SUBJ, TO, DATEH, B}, "bad signature"},                             /* Cc removed */
        {{SUBJ, TO, CC, B}, "bad signature"},                                /* Date removed */
        {{SUBJ, TO, CC, DATEH, B, "subject:Lunch on Saturday"}, "bad signature"},   /* a second Subject */
        {{"subject:Lunch on Saturday", SUBJ, TO, CC, DATEH, B}, "bad signature"},   /* ... before it */
        {{SUBJ, TO, CC, DATEH, B, "to:mallory@example.com"}, "bad signature"},
        {{SUBJ, TO, CC, DATEH, B, "cc:"}, "bad signature"},                  /* an empty Cc added */
        {{"subject:Lunch on Friday ", TO, CC, DATEH, B}, "bad signature"},   /* not canonical */
        {{SUBJ, TO, CC, DATEH, B, "x-other:x"}, "ok"},                       /* not bound */
        {{CC, TO, SUBJ, DATEH, CTYPE, MIMEV, FROMH}, "ok"},                  /* other order of fields */
    };
#undef B
    struct pl_tagkeys k;
    struct pl_tagin in = input();
    char v[256];
    (void)state;
    parse_ok(&k, KEYS);
    assert_int_equal(pl_tag_make(&k, T0, &in, v, sizeof(v)), 0);
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        struct pl_tagin x = input();
        size_t n = 0;
        while (n < 10 && c[i].h[n])
            n++;
        x.hdrs = (char *const *)c[i].h;
        x.nhdrs = n;
        if (strcmp(verify_in(&k, v, &x, NULL, NULL), c[i].why) != 0)
            fail_msg("case %zu: %s, want %s", i, verify_in(&k, v, &x, NULL, NULL), c[i].why);
    }
    in.bh = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";     /* the empty body's */
    assert_string_equal(verify_in(&k, v, &in, NULL, NULL), "the body changed since it was tagged");
    in.bh = "";
    assert_string_equal(verify_in(&k, v, &in, NULL, NULL), "the body changed since it was tagged");
    /* the same tag of version 1 or 2 is refused, saying why */
    in = input();
    memcpy(strstr(v, "v=3"), "v=2", 3);
    assert_string_equal(verify_in(&k, v, &in, NULL, NULL),
                        "tag version 2 (binds neither the whole From nor Reply-To, Sender, "
                        "MIME and thread fields): refused");
    memcpy(strstr(v, "v=2"), "v=1", 3);
    assert_string_equal(verify_in(&k, v, &in, NULL, NULL),
                        "tag version 1 (binds neither body nor Subject/To/Cc/Date): refused");
    pl_tagkeys_free(&k);
}

/* The fields v=3 binds besides Subject, To, Cc, Date: the whole From (its
 * display name too), Reply-To, Sender, Content-Type,
 * Content-Transfer-Encoding, MIME-Version, In-Reply-To, References.  Each
 * one changed, removed, added a second time, or added to a mail that did
 * not have it (signed as absent) shows nothing. */
static void test_tag_more_bound_fields(void **state)
{
    static const struct { const char *field, *other; } f[] = {
        {FROMH, "from:\"Alice (new bank details: IBAN XX00 EVIL)\" <alice@example.com>"},
        {"reply-to:Alice <alice@example.com>", "reply-to:<mallory@evil.example>"},
        {"sender:alice@example.com", "sender:mallory@evil.example"},
        {CTYPE, "content-type:text/html; charset=utf-7"},
        {"content-transfer-encoding:7bit", "content-transfer-encoding:quoted-printable"},
        {MIMEV, "mime-version:1.1"},
        {"in-reply-to:<m0@example.com>", "in-reply-to:<m9@evil.example>"},
        {"references:<m00@example.com> <m0@example.com>", "references:<m00@example.com> <m9@evil.example>"},
    };
    enum { NF = sizeof(f) / sizeof(f[0]) };
    /* the other fields of the mail: Subject, To, Cc, Date */
    static char *const rest[] = {SUBJ, TO, CC, DATEH};
    struct pl_tagkeys k;
    char v[256];
    (void)state;
    parse_ok(&k, KEYS);
    for (size_t i = 0; i < NF; i++) {
        /* all: every bound field, once each; less: all but field i */
        char *all[NF + 4], *less[NF + 4], *x[NF + 5];
        size_t na = 0, nl = 0;
        struct pl_tagin in = input(), y;
        for (size_t r = 0; r < 4; r++)
            all[na++] = less[nl++] = rest[r];
        for (size_t j = 0; j < NF; j++) {
            all[na++] = (char *)f[j].field;
            if (j != i)
                less[nl++] = (char *)f[j].field;
        }
        in.hdrs = all;
        in.nhdrs = na;
        assert_int_equal(pl_tag_make(&k, T0, &in, v, sizeof(v)), 0);
        if (strcmp(verify_in(&k, v, &in, NULL, NULL), "ok") != 0)
            fail_msg("%s: unchanged mail refused", f[i].field);
        y = in;
        memcpy(x, all, sizeof(all));                        /* changed */
        x[4 + i] = (char *)f[i].other;
        y.hdrs = x;
        if (strcmp(verify_in(&k, v, &y, NULL, NULL), "bad signature") != 0)
            fail_msg("%s changed to %s: %s", f[i].field, f[i].other, verify_in(&k, v, &y, NULL, NULL));
        y.hdrs = less;                                      /* removed */
        y.nhdrs = nl;
        if (strcmp(verify_in(&k, v, &y, NULL, NULL), "bad signature") != 0)
            fail_msg("%s removed: %s", f[i].field, verify_in(&k, v, &y, NULL, NULL));
        memcpy(x, all, sizeof(all));                        /* a second one */
        x[na] = (char *)f[i].other;
        y.hdrs = x;
        y.nhdrs = na + 1;
        if (strcmp(verify_in(&k, v, &y, NULL, NULL), "bad signature") != 0)
            fail_msg("a second %s added: %s", f[i].other, verify_in(&k, v, &y, NULL, NULL));
        x[0] = (char *)f[i].field;                          /* the same one before the others */
        memcpy(x + 1, all, sizeof(all));
        y.nhdrs = na + 1;
        if (strcmp(verify_in(&k, v, &y, NULL, NULL), "bad signature") != 0)
            fail_msg("%s twice: %s", f[i].field, verify_in(&k, v, &y, NULL, NULL));
        /* a mail without it, tagged: adding it later shows nothing */
        in.hdrs = less;
        in.nhdrs = nl;
        assert_int_equal(pl_tag_make(&k, T0, &in, v, sizeof(v)), 0);
        if (strcmp(verify_in(&k, v, &in, NULL, NULL), "ok") != 0)
            fail_msg("without %s: unchanged mail refused", f[i].field);
        y = in;
        y.hdrs = all;
        y.nhdrs = na;
        if (strcmp(verify_in(&k, v, &y, NULL, NULL), "bad signature") != 0)
            fail_msg("%s added: %s", f[i].field, verify_in(&k, v, &y, NULL, NULL));
    }
    pl_tagkeys_free(&k);
}

/* The canonical header field: what relays may change does not matter. */
static void test_tag_hdr_canon(void **state)
{
    static const struct { const char *name, *value, *want; } c[] = {
        {"Subject", "Lunch on Friday", SUBJ},
        {"SUBJECT", "  Lunch \t on\r\n Friday \r\n", SUBJ},               /* folded, spaced */
        {"subject", "Lunch\r\n\ton  Friday", SUBJ},
        {"To", "Bob <bob@example.com>,\r\n  carol@example.com", "to:Bob <bob@example.com>, carol@example.com"},
        {"Cc", "", "cc:"}, {"Cc", " \t ", "cc:"},
        {"Date", "a: b", "date:a: b"},
        {"Subject", "Lunch on friday", "subject:Lunch on friday"},        /* value case kept */
        {"Subject", "Lunch\ron Friday", "subject:Lunch\ron Friday"},      /* a lone CR is text */
        {"Subject", "Lunch \r on\r\n Friday", "subject:Lunch \r on Friday"},
        {"From", "\"Alice\"\r\n\t<alice@example.com>", "from:\"Alice\" <alice@example.com>"},
        {"Reply-To \t", "<mallory@evil.example>", "reply-to:<mallory@evil.example>"},   /* "Reply-To :" */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char *got = pl_tag_hdr_canon(c[i].name, c[i].value);
        if (strcmp(got, c[i].want) != 0)
            fail_msg("case %zu: \"%s\", want \"%s\"", i, got, c[i].want);
        free(got);
    }
    /* the names the milter keeps for a tag */
    {
        static const char *const yes[] = {"From", "REPLY-TO", "sender", "Subject", "To", "Cc", "Date",
            "In-Reply-To", "References", "MIME-Version", "Content-Type", "content-transfer-encoding",
            "Reply-To ", "Content-Type\t \t"};
        static const char *const no[] = {"X-Reply-To", "Reply-To-X", "Reply-T", "Resent-From", " From",
            "X-Postlink-Tag", "Message-ID", "Jabber-ID", "", "Reply To"};
        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
            if (!pl_tag_bound(yes[i]))
                fail_msg("\"%s\" not bound", yes[i]);
        for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
            if (pl_tag_bound(no[i]))
                fail_msg("\"%s\" bound", no[i]);
    }
}

/* The hash of body fed in chunks of every size from 1 to its length. */
static void body_hash(const char *body, char *out)
{
    size_t len = strlen(body);
    char first[PL_BODYHASH_B64 + 1] = "";
    for (size_t chunk = 1; chunk <= (len ? len : 1); chunk++) {
        struct pl_bodyhash *b = pl_bodyhash_new();
        for (size_t o = 0; o < len; o += chunk)
            assert_int_equal(pl_bodyhash_update(b, body + o, o + chunk > len ? len - o : chunk), 0);
        assert_int_equal(pl_bodyhash_final(b, out), 0);
        pl_bodyhash_free(b);
        if (chunk == 1)
            snprintf(first, sizeof(first), "%s", out);
        else if (strcmp(first, out) != 0)
            fail_msg("chunks of %zu: %s, in bytes: %s", chunk, out, first);
    }
}

/* The canonical body: line endings, white space at line ends, runs of it,
 * empty lines at the end do not change the hash; text does. */
static void test_tag_body_canon(void **state)
{
    static const char *const same[] = {
        BODY, "Hi Bob,\n\nSee you.\n", "Hi Bob,\r\n\r\nSee you.", "Hi Bob,  \r\n \t\r\nSee you.\t\r\n",
        "Hi  Bob,\n\nSee\t\tyou.\n\n\n\r\n", "Hi Bob,\r\n\r\nSee you.\r\n  \r\n",
    };
    static const char *const other[] = {
        "Hi Bob,\r\nSee you.\r\n", "Hi Bob,\r\n\r\nSee you!\r\n", "Hi Bob,\r\n\r\n See you.\r\n",
        "HiBob,\r\n\r\nSee you.\r\n", "\r\nHi Bob,\r\n\r\nSee you.\r\n", "Hi Bob,\r\n\r\nSee you.\r\n.\r\n",
        "hi Bob,\r\n\r\nSee you.\r\n",
        /* a CR not followed by LF is text, not white space or a line end */
        "Hi\rBob,\r\n\r\nSee you.\r\n", "Hi \rBob,\r\n\r\nSee you.\r\n", "Hi Bob,\r\r\n\r\nSee you.\r\n",
        "Hi Bob,\r\n\r\nSee you.\r", "Hi Bob,\r\n\r\r\nSee you.\r\n", "Hi Bob,\r\n\r\nSee you.\r\n\r",
    };
    char h[PL_BODYHASH_B64 + 1];
    (void)state;
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        body_hash(same[i], h);
        if (strcmp(h, BH) != 0)
            fail_msg("same %zu: %s, want %s", i, h, BH);
    }
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
        body_hash(other[i], h);
        if (strcmp(h, BH) == 0)
            fail_msg("other %zu hashes like the original", i);
    }
    /* empty, or only empty lines: the hash of nothing (RFC 6376 relaxed) */
    body_hash("", h);
    assert_string_equal(h, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    body_hash("\r\n \r\n\n", h);
    assert_string_equal(h, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    /* "a\rb" is not "a b" (nor "ab"), in chunks of every size */
    {
        char h2[PL_BODYHASH_B64 + 1], h3[PL_BODYHASH_B64 + 1];
        body_hash("a\rb\r\n", h);
        body_hash("a b\r\n", h2);
        body_hash("ab\r\n", h3);
        assert_string_not_equal(h, h2);
        assert_string_not_equal(h, h3);
        body_hash("a\rb", h2);                       /* the last line's end */
        assert_string_equal(h, h2);
    }
}

/* A tag made by another key set whose signer is our key id (secret hex)
 * verifies, naming our key of the expected kind. */
static void verify_foreign(const char *id, const char *hex, enum pl_tagkey_kind kind)
{
    struct pl_tagkeys k, other;
    struct pl_tagin in = input();
    char v[256], text[256];
    int64_t t = 0;
    const struct pl_tagkey *key = NULL;
    parse_ok(&k, KEYS);
    snprintf(text, sizeof(text), "%s %s sign\n", id, hex);
    parse_ok(&other, text);
    assert_int_equal(pl_tag_make(&other, T0 + 7, &in, v, sizeof(v)), 0);
    snprintf(text, sizeof(text), "v=3; k=%s; t=%lld; bh=" BH "; s=", id, T0 + 7);
    assert_memory_equal(v, text, strlen(text));
    assert_string_equal(verify(&k, v, ACC, MID, MSGID, FROM, &t, &key), "ok");
    assert_int_equal(t, T0 + 7);
    assert_string_equal(key->id, id);
    assert_int_equal(key->kind, kind);
    assert_string_equal(verify(&k, v, ACC, MID, MSGID, "x@example.com", 0, 0), "bad signature");
    pl_tagkeys_free(&other);
    pl_tagkeys_free(&k);
}

static void test_tag_old_and_peer(void **state)
{
    (void)state;
    verify_foreign("site-2025", H32, PL_TAGKEY_OLD);
    verify_foreign("peer.example", H128, PL_TAGKEY_PEER);
}

/* ---- JIDs ----------------------------------------------------------------- */

static void test_jid(void **state)
{
    static const char *const good[] = {"alice@example.com", "a.b-c_d+e@x.example", "A@B", "1@2-3.4"};
    static const char *const bad[] = {"alice@example.com/phone", "alice", "@example.com", "alice@",
        "a@b@c", "", "al\"ice@x", "al&ice@x", "al'ice@x", "al:ice@x", "al<ice@x", "al>ice@x",
        "al ice@x", "al\tice@x", "alice@ex_ample", "alice@.example", "alice@example.",
        "alice@ex..ample", "alice@exa mple"};
    char jid[400], out[PL_JID_MAX];
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (pl_jid_check(good[i]) != NULL)
            fail_msg("\"%s\" rejected: %s", good[i], pl_jid_check(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (pl_jid_check(bad[i]) == NULL)
            fail_msg("\"%s\" accepted", bad[i]);
    memset(jid, 'a', 307);
    strcpy(jid + 307, "@example.com");              /* 319 bytes */
    assert_null(pl_jid_check(jid));
    memset(jid, 'a', 308);
    strcpy(jid + 308, "@example.com");
    assert_non_null(pl_jid_check(jid));
    pl_jid_canon("Alice@Example.COM/Phone", out, sizeof(out));
    assert_string_equal(out, "alice@example.com");
    pl_jid_canon("Bob@X", out, 4);
    assert_string_equal(out, "bob");
}

/* ---- the store ------------------------------------------------------------ */

struct fx { char dir[64]; pl_store *s; pl_txn *t; };

static int setup_store(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct pl_store_opts o = {0};
    char err[256];
    pl_log_open("test_tag", PL_LOG_STDERR, 0);
    assert_non_null(testdir_new(f->dir, sizeof(f->dir)));
    o.home = f->dir;
    assert_int_equal(pl_store_open(&f->s, &o, err, sizeof(err)), PL_OK);
    assert_int_equal(pl_store_begin(f->s, &f->t, PL_TXN_SYNC), PL_OK);
    *state = f;
    return 0;
}

static int teardown_store(void **state)
{
    struct fx *f = *state;
    if (f->t)
        pl_txn_abort(f->t);
    pl_store_close(f->s);
    testdir_remove(f->dir);
    free(f);
    return 0;
}

/* Commit and begin the next transaction. */
static pl_txn *commit(struct fx *f)
{
    pl_txn *t = f->t;
    f->t = NULL;
    assert_int_equal(pl_txn_commit(t), PL_OK);
    assert_int_equal(pl_store_begin(f->s, &f->t, PL_TXN_SYNC), PL_OK);
    return f->t;
}

/* "addr jid sub share created" */
static const char *lstr(const struct pl_mlink *l, char *b)
{
    snprintf(b, 800, "%s %s %s %d %lld", l->addr, l->jid, l->sub, l->share, (long long)l->created);
    return b;
}

static int list_fn(void *ctx, const struct pl_mlink *l)
{
    char *out = ctx, b[800];
    snprintf(out + strlen(out), 1024 - strlen(out), "%s|", lstr(l, b));
    return 0;
}

static void test_mlink(void **state)
{
    struct fx *f = *state;
    struct pl_mlink l;
    char all[1024] = "", b[800];
    pl_txn *t = f->t;
    assert_int_equal(pl_mlink_get(t, "carol@example.com", &l), PL_NOTFOUND);
    assert_int_equal(pl_mlink_del(t, "carol@example.com"), PL_NOTFOUND);
    assert_int_equal(pl_mlink_add(t, "Carol@Example.com", "Carol@Jabber.example/laptop", T0), PL_OK);
    assert_int_equal(pl_mlink_add(t, "carol@example.com", "carol@jabber.example", T0 + 5), PL_OK);
    t = commit(f);
    assert_int_equal(pl_mlink_get(t, "CAROL@example.com", &l), PL_OK);   /* 2nd add changed nothing */
    assert_string_equal(lstr(&l, b), "carol@example.com carol@jabber.example none 1 1795424400");
    assert_int_equal(pl_mlink_by_jid(t, "Carol@jabber.example/phone", &l), PL_OK);
    assert_string_equal(l.addr, "carol@example.com");
    assert_int_equal(pl_mlink_by_jid(t, "dave@jabber.example", &l), PL_NOTFOUND);
    /* either side linked elsewhere */
    assert_int_equal(pl_mlink_add(t, "carol@example.com", "dave@jabber.example", T0), PL_MLINK_OTHER);
    assert_int_equal(pl_mlink_add(t, "dave@example.com", "carol@jabber.example", T0), PL_MLINK_OTHER);
    assert_int_equal(pl_mlink_get(t, "dave@example.com", &l), PL_NOTFOUND);
    assert_int_equal(pl_mlink_add(t, "bob@example.com", "bob@jabber.example", T0 + 1), PL_OK);
    assert_int_equal(pl_mlink_set_sub(t, "carol@example.com", "subscribed"), PL_OK);
    assert_int_equal(pl_mlink_set_share(t, "carol@example.com", 0), PL_OK);
    assert_int_equal(pl_mlink_set_sub(t, "nobody@example.com", "pending"), PL_NOTFOUND);
    assert_int_equal(pl_mlink_set_share(t, "nobody@example.com", 1), PL_NOTFOUND);
    t = commit(f);
    assert_int_equal(pl_mlink_list(t, list_fn, all), PL_OK);
    assert_string_equal(all, "bob@example.com bob@jabber.example none 1 1795424401|"
                             "carol@example.com carol@jabber.example subscribed 0 1795424400|");
    /* unlinking frees the JID for another address */
    assert_int_equal(pl_mlink_del(t, "Carol@example.com"), PL_OK);
    assert_int_equal(pl_mlink_by_jid(t, "carol@jabber.example", &l), PL_NOTFOUND);
    assert_int_equal(pl_mlink_add(t, "dave@example.com", "carol@jabber.example", T0 + 9), PL_OK);
    t = commit(f);
    assert_int_equal(pl_mlink_by_jid(t, "carol@jabber.example", &l), PL_OK);
    assert_string_equal(lstr(&l, b), "dave@example.com carol@jabber.example none 1 1795424409");
    assert_int_equal(pl_mlink_get(t, "carol@example.com", &l), PL_NOTFOUND);
}

static void test_mailid_new(void **state)
{
    static const char *const bad[] = {"abcdefghijklmnopqrstuvwxy", MID "a", "Abcdefghijklmnopqrstuvwxyz",
                                      "abcdefghijklmnopqrstuvwxy1", "abcdefghijklmnopqrstuvwxy8", ""};
    char a[PL_MAILID_LEN + 1], b[PL_MAILID_LEN + 1];
    (void)state;
    assert_int_equal(pl_mailid_new(a, sizeof(a)), PL_OK);
    assert_int_equal(pl_mailid_new(b, sizeof(b)), PL_OK);
    assert_int_equal(strlen(a), PL_MAILID_LEN);
    assert_int_equal(strspn(a, "abcdefghijklmnopqrstuvwxyz234567"), PL_MAILID_LEN);
    assert_string_not_equal(a, b);
    assert_true(pl_mailid_ok(a));
    assert_true(pl_mailid_ok(MID));
    assert_int_equal(pl_mailid_new(a, PL_MAILID_LEN), PL_ERR);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (pl_mailid_ok(bad[i]))
            fail_msg("\"%s\" accepted", bad[i]);
}

struct put { const char *id; struct pl_mailid m; int rc; };

static int put_fn(pl_txn *t, void *ctx)
{
    struct put *p = ctx;
    p->rc = pl_mailid_put(t, p->id, &p->m);
    return PL_OK;
}

static void test_mailid_store(void **state)
{
    struct fx *f = *state;
    struct put p = {MID, {.created = T0, .sender = ACC, .jid = JID, .msgid = MSGID, .date = DATE,
                          .subject = "Lunch?\r\n tomorrow\nat 12", .rcpts = "bob@x carol@example.org"}, -99};
    struct pl_mailid m;
    unsigned n = 99;
    char b[sizeof(m) + 16];
    pl_txn *t;
    pl_txn_abort(f->t);                         /* through pl_store_run, as the milter does */
    f->t = NULL;
    assert_int_equal(pl_store_run(f->s, PL_TXN_SYNC, put_fn, &p), PL_OK);
    assert_int_equal(p.rc, PL_OK);
    p.id = MID2;
    p.m.created = T0 + 100;
    assert_int_equal(pl_store_run(f->s, PL_TXN_SYNC, put_fn, &p), PL_OK);
    assert_int_equal(p.rc, PL_OK);
    p.id = "not-a-mail-id";
    assert_int_equal(pl_store_run(f->s, PL_TXN_SYNC, put_fn, &p), PL_OK);
    assert_int_equal(p.rc, PL_ERR);
    assert_int_equal(pl_store_begin(f->s, &f->t, PL_TXN_SYNC), PL_OK);
    t = f->t;
    assert_int_equal(pl_mailid_get(t, MID, &m), PL_OK);
    snprintf(b, sizeof(b), "%lld|%s|%s|%s|%s|%s|%s", (long long)m.created, m.sender, m.jid, m.msgid,
             m.date, m.subject, m.rcpts);
    assert_string_equal(b, "1795424400|" ACC "|" JID "|" MSGID "|" DATE "|Lunch?   tomorrow at 12|"
                           "bob@x carol@example.org");
    assert_int_equal(pl_mailid_get(t, "zzzzzzzzzzzzzzzzzzzzzzzzzz", &m), PL_NOTFOUND);
    assert_int_equal(pl_mailid_get(t, "not-a-mail-id", &m), PL_NOTFOUND);
    /* purge by age */
    assert_int_equal(pl_mailid_purge(t, T0, &n), PL_OK);
    assert_int_equal(n, 0);
    assert_int_equal(pl_mailid_purge(t, T0 + 50, &n), PL_OK);
    assert_int_equal(n, 1);
    t = commit(f);
    assert_int_equal(pl_mailid_get(t, MID, &m), PL_NOTFOUND);
    assert_int_equal(pl_mailid_get(t, MID2, &m), PL_OK);
    assert_int_equal(m.created, T0 + 100);
}

static void test_mailid_rcpt(void **state)
{
    struct pl_mailid m = {.rcpts = "xbob@x bob@x carol@example.org"};
    (void)state;
    assert_true(pl_mailid_has_rcpt(&m, "bob@x"));
    assert_true(pl_mailid_has_rcpt(&m, "BOB@X"));
    assert_true(pl_mailid_has_rcpt(&m, "xbob@x"));
    assert_true(pl_mailid_has_rcpt(&m, "Carol@Example.org"));
    assert_false(pl_mailid_has_rcpt(&m, "ob@x"));
    assert_false(pl_mailid_has_rcpt(&m, "bob@x.y"));
    assert_false(pl_mailid_has_rcpt(&m, "carol@example"));
    assert_false(pl_mailid_has_rcpt(&m, ""));
    snprintf(m.rcpts, sizeof(m.rcpts), "bob@x.y");
    assert_false(pl_mailid_has_rcpt(&m, "bob@x"));
    assert_false(pl_mailid_has_rcpt(&m, "ob@x.y"));
    assert_true(pl_mailid_has_rcpt(&m, "bob@x.y"));
    /* "~" marks a Bcc recipient: still a recipient; "~" or a space in the
     * address asked about never matches */
    snprintf(m.rcpts, sizeof(m.rcpts), "~bob@x carol@y ~dave@z");
    assert_true(pl_mailid_has_rcpt(&m, "bob@x"));
    assert_true(pl_mailid_has_rcpt(&m, "dave@z"));
    assert_false(pl_mailid_has_rcpt(&m, "~bob@x"));
    assert_false(pl_mailid_has_rcpt(&m, "x carol@y"));
    snprintf(m.rcpts, sizeof(m.rcpts), "a~bob@x");
    assert_false(pl_mailid_has_rcpt(&m, "bob@x"));
    assert_true(pl_mailid_rcpt_ok("bob@x"));
    assert_false(pl_mailid_rcpt_ok("\"b b\"@x"));
    assert_false(pl_mailid_rcpt_ok("~bob@x"));
}

static void test_presence_cache(void **state)
{
    static const char *const names[] = {"unknown", "online", "away", "offline"};
    static const enum pl_presence ps[] = {PL_PRES_UNKNOWN, PL_PRES_ONLINE, PL_PRES_AWAY, PL_PRES_OFFLINE};
    struct fx *f = *state;
    enum pl_presence p = PL_PRES_ONLINE;
    int64_t u = 0;
    pl_txn *t = f->t;
    for (int i = 0; i < 4; i++) {
        assert_string_equal(pl_presence_name(ps[i]), names[i]);
        assert_int_equal(pl_presence_parse(names[i]), ps[i]);
    }
    assert_string_equal(pl_presence_name((enum pl_presence)42), "unknown");
    assert_int_equal(pl_presence_parse("bogus"), PL_PRES_UNKNOWN);
    assert_int_equal(pl_presence_get(t, JID, &p, &u), PL_NOTFOUND);
    assert_int_equal(pl_presence_put(t, "Alice@Jabber.example/phone", PL_PRES_ONLINE, T0), PL_OK);
    t = commit(f);
    assert_int_equal(pl_presence_get(t, JID, &p, &u), PL_OK);
    assert_int_equal(p, PL_PRES_ONLINE);
    assert_int_equal(u, T0);
    assert_int_equal(pl_presence_put(t, JID, PL_PRES_AWAY, T0 + 3), PL_OK);
    assert_int_equal(pl_presence_get(t, "ALICE@jabber.example", &p, NULL), PL_OK);
    assert_int_equal(p, PL_PRES_AWAY);
    assert_int_equal(pl_presence_get(t, JID, &p, &u), PL_OK);
    assert_int_equal(u, T0 + 3);
}

/* ---- presence lookups ----------------------------------------------------- */

struct sfx { char dir[64], path[96]; int lfd; pid_t child; };

static void stop_child(struct sfx *f)
{
    if (f->child > 0) {
        kill(f->child, SIGKILL);
        waitpid(f->child, NULL, 0);
    }
    f->child = 0;
}

/* A listening socket that nobody accepts on until serve(). */
static int setup_sock(void **state)
{
    struct sfx *f = calloc(1, sizeof(*f));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_non_null(testdir_new(f->dir, sizeof(f->dir)));
    snprintf(f->path, sizeof(f->path), "%s/presence.sock", f->dir);
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
    assert_true((f->lfd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->lfd, 4), 0);
    *state = f;
    return 0;
}

static int teardown_sock(void **state)
{
    struct sfx *f = *state;
    stop_child(f);
    close(f->lfd);
    testdir_remove(f->dir);
    free(f);
    return 0;
}

/* A forked server answering one request and holding the connection: with
 * answer if it was "PRESENCE <JID>\n", else with "wrong request\n". */
static void serve(struct sfx *f, const char *answer)
{
    if ((f->child = fork()) == 0) {
        char req[256];
        int fd = accept(f->lfd, NULL, NULL);
        ssize_t r = fd >= 0 ? read(fd, req, sizeof(req) - 1) : -1;   /* one short write */
        req[r > 0 ? r : 0] = '\0';
        if (strcmp(req, "PRESENCE " JID "\n") != 0)
            answer = "wrong request\n";
        if (fd < 0 || write(fd, answer, strlen(answer)) < 0)
            _exit(1);
        sleep(5);
        _exit(0);
    }
    assert_true(f->child > 0);
}

static int64_t ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_ask_answers(void **state)
{
    static const struct { const char *answer; int rc; const char *word; } c[] = {
        {"online\n", 0, "online"}, {"away\r\n", 0, "away"}, {"onlinex\n", -1, "unexpected answer"},
        {"\x01\x02garbage\n", -1, "unexpected answer"}};
    struct sfx *f = *state;
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        char word[32] = "";
        serve(f, c[i].answer);
        int rc = pl_presence_ask(f->path, JID, 2000, word, sizeof(word));
        stop_child(f);
        if (rc != c[i].rc || strcmp(word, c[i].word) != 0)
            fail_msg("case %zu: %d \"%s\", want %d \"%s\"", i, rc, word, c[i].rc, c[i].word);
    }
}

static void test_ask_errors(void **state)
{
    struct sfx *f = *state;
    char word[64] = "", path[160];
    int64_t t0 = ms();
    /* listening, never accepting: the budget runs out */
    assert_int_equal(pl_presence_ask(f->path, JID, 100, word, sizeof(word)), -1);
    assert_in_range(ms() - t0, 90, 999);
    assert_string_equal(word, "timeout");
    t0 = ms();
    snprintf(path, sizeof(path), "%s/absent.sock", f->dir);
    assert_int_equal(pl_presence_ask(path, JID, 2000, word, sizeof(word)), -1);
    assert_true(ms() - t0 < 500);
    assert_true(word[0] != '\0');
    assert_string_not_equal(word, "timeout");
    assert_int_equal(pl_presence_ask(f->path, JID "\nPRESENCE x@y", 2000, word, sizeof(word)), -1);
    assert_string_equal(word, "bad JID");
    assert_int_equal(pl_presence_ask(f->path, JID "\r", 2000, word, sizeof(word)), -1);
    assert_string_equal(word, "bad JID");
}

#define STORE(t) cmocka_unit_test_setup_teardown(t, setup_store, teardown_store)
#define SOCK(t) cmocka_unit_test_setup_teardown(t, setup_sock, teardown_sock)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_parse), cmocka_unit_test(test_keys_errors),
        cmocka_unit_test(test_tag_known_hmac), cmocka_unit_test(test_tag_verify),
        cmocka_unit_test(test_tag_every_position), cmocka_unit_test(test_tag_bound_fields),
        cmocka_unit_test(test_tag_more_bound_fields),
        cmocka_unit_test(test_tag_hdr_canon), cmocka_unit_test(test_tag_body_canon),
        cmocka_unit_test(test_tag_old_and_peer), cmocka_unit_test(test_jid),
        STORE(test_mlink), cmocka_unit_test(test_mailid_new), STORE(test_mailid_store),
        cmocka_unit_test(test_mailid_rcpt), STORE(test_presence_cache),
        SOCK(test_ask_answers), SOCK(test_ask_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
