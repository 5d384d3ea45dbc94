/* fuzz_presence_request.c -- libFuzzer target: the request line a local
 * client sends to postlink-xmppd's presence lookup socket, parsed as
 * serve_one() does (state/presence_proto.c, then pl_jid_check from
 * state/messenger.c). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "messenger.h"
#include "presence_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char jid[PL_JID_MAX], small[4];

    /* the server reads at most 511 bytes into its buffer */
    if (size > 511)
        size = 511;
    if (pl_presence_parse_request((const char *)data, size, jid, sizeof(jid)) == 0) {
        size_t n = strlen(jid);
        if (n == 0 || n >= sizeof(jid) || size < 9 + n || memcmp(data + 9, jid, n) != 0 ||
            strpbrk(jid, "\r\n") != NULL)
            abort();                          /* not the bytes after "PRESENCE " */
        (void)pl_jid_check(jid);
    }
    (void)pl_presence_parse_request((const char *)data, size, small, sizeof(small));
    return 0;
}
