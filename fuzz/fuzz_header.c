/* fuzz_header.c -- libFuzzer target: a raw message's header section as the
 * milters and postlink-syncd read it (lib/header.c: fields, folding,
 * Message-ID, Date, addresses) and the control it carries (state/control.c:
 * X-Control words, X-Control-Target lists, versions, X-Postlink-State). */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "control.h"
#include "fuzz_util.h"
#include "header.h"
#include "strutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every field-level parser on one value. */
static void one_value(const char *name, const char *value)
{
    char out[PL_MSGID_MAX + 1], addr[512];
    struct pl_strvec v = {0};
    int64_t t;
    unsigned flags;

    if (pl_msgid_parse(value, out, sizeof(out), NULL) == 0 &&
        (out[0] != '<' || strlen(out) > PL_MSGID_MAX || strchr(out, '@') == NULL))
        abort();                              /* not the canonical form promised */
    (void)pl_date_parse(value, &t);
    if (pl_header_addr(value, addr, sizeof(addr)) == 0 && strchr(addr, '@') == NULL)
        abort();
    (void)pl_header_addr(value, addr, 8);     /* a small buffer: must refuse, not overflow */
    pl_header_addr_list(value, &v);
    pl_strvec_free(&v);
    (void)pl_state_parse(value, &flags);
    (void)pl_ctl_word_parse(value);
    (void)pl_is_sync_header(name);
}

/* What pl_control_parse promises of a control it accepts. */
static void check_control(const struct pl_control *c, size_t max)
{
    char id[PL_MSGID_MAX + 1];

    if (c->word == PL_CW_NONE || c->ntargets > max ||
        (c->word == PL_CW_RESYNC ? c->ntargets != 0 || c->since < 0 : c->ntargets == 0))
        abort();
    for (size_t i = 0; i < c->ntargets; i++) {
        /* canonical: parses to itself; no duplicates */
        if (pl_msgid_parse(c->targets[i], id, sizeof(id), NULL) != 0 ||
            strcmp(id, c->targets[i]) != 0)
            abort();
        for (size_t k = 0; k < i; k++)
            if (strcmp(c->targets[k], c->targets[i]) == 0)
                abort();
    }
}

/* Field names match in any letter case (a forged "x-control" is the same
 * field as "X-Control"). */
static void check_lookup(const struct pl_headers *hs, size_t i)
{
    char upper[256], lower[256];
    size_t n = strlen(hs->h[i].name), idx = 0;

    if (n >= sizeof(upper))
        return;
    for (size_t k = 0; k <= n; k++) {
        upper[k] = (char)toupper((unsigned char)hs->h[i].name[k]);
        lower[k] = (char)tolower((unsigned char)hs->h[i].name[k]);
    }
    for (size_t k = 0; k < i; k++)
        idx += strcasecmp(hs->h[k].name, hs->h[i].name) == 0;
    if (pl_headers_get(hs, upper, idx) != hs->h[i].value ||
        pl_headers_get(hs, lower, idx) != hs->h[i].value ||
        pl_headers_count(hs, upper) <= idx)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pl_headers hs, added = {0};
    struct pl_control c;
    char err[256], shown[64];

    if (pl_headers_parse(&hs, (const char *)data, size) != 0)
        return 0;
    if (hs.body_offset > size)
        abort();
    for (size_t i = 0; i < hs.n; i++) {
        one_value(hs.h[i].name, hs.h[i].value);
        check_lookup(&hs, i);
        /* the milters add fields one by one as libmilter hands them over */
        pl_headers_add(&added, hs.h[i].name, hs.h[i].value);
    }
    for (size_t max = 1; max <= 50; max += 49)
        if (pl_control_parse(&hs, max, &c, err, sizeof(err)) == PL_CTL_OK) {
            check_control(&c, max);
            pl_control_free(&c);
        }
    if (pl_control_parse(&added, 50, &c, err, sizeof(err)) == PL_CTL_OK)
        pl_control_free(&c);
    (void)pl_control_parse(&hs, 50, &c, shown, sizeof(shown));   /* short err buffer */
    if (c.ntargets)
        pl_control_free(&c);
    pl_headers_free(&added);
    pl_headers_free(&hs);
    return 0;
}
