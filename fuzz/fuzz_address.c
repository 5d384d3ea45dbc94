/* fuzz_address.c -- libFuzzer target: mail addresses as the milters and
 * postlinkctl take them (state/address.c: SMTP MAIL FROM / RCPT TO
 * arguments, the syntax check, the canonical form, the domain) and bare
 * JIDs (state/messenger.c: pl_jid_check, pl_jid_canon). */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "address.h"
#include "fuzz_util.h"
#include "messenger.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_strndup(data, size), small[8], addr[512], jid[PL_JID_MAX];
    const char *why;

    int whole = pl_addr_from_smtp(s, addr, sizeof(addr));
    int cut = pl_addr_from_smtp(s, small, sizeof(small));
    if (strlen(small) >= sizeof(small))
        abort();
    /* finding 5: never cut -- what does not fit is refused; what fits in
     * the small buffer comes back as it does in the large one */
    if (cut == 0 && (whole != 0 || strcmp(small, addr) != 0))
        abort();
    if (whole == 0 && strlen(addr) > PL_ADDR_MAX)
        abort();
    if (pl_addr_check(addr) == NULL && *pl_addr_domain(addr) == '\0')
        abort();                              /* a usable address has a domain */
    if ((why = pl_addr_check(s)) == NULL) {
        char canon[512];
        pl_addr_canon(s, canon, sizeof(canon));
        if (pl_addr_check(canon) != NULL)     /* canonical form of a good one is good */
            abort();
    }
    pl_addr_canon(s, small, sizeof(small));
    (void)pl_addr_domain(s);

    if (pl_jid_check(s) == NULL) {
        pl_jid_canon(s, jid, sizeof(jid));
        if (strcmp(jid, s) != 0 && strcasecmp(jid, s) != 0)
            abort();                          /* a bare JID only changes case */
        if (pl_jid_check(jid) != NULL)
            abort();
    }
    pl_jid_canon(s, jid, sizeof(jid));
    pl_jid_canon(s, small, sizeof(small));
    pl_jid_canon(s, small, 0);
    free(s);
    return 0;
}
