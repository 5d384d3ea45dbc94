/* fuzz_header.c -- libFuzzer target: a raw message's header section as the
 * milters and postlink-syncd read it (lib/header.c: fields, folding,
 * Message-ID, Date, addresses) and the control it carries (state/control.c:
 * X-Control words, X-Control-Target lists, versions, X-Postlink-State). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
        /* the milters add fields one by one as libmilter hands them over */
        pl_headers_add(&added, hs.h[i].name, hs.h[i].value);
    }
    for (size_t max = 1; max <= 50; max += 49)
        if (pl_control_parse(&hs, max, &c, err, sizeof(err)) == PL_CTL_OK) {
            if (c.ntargets > max)
                abort();
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
