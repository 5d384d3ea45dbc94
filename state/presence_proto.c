/* presence_proto.c -- the presence lookup request line (presence_proto.h).
 * Pure: no I/O, bounded by len, never reads past it. */
#include "config.h"

#include <string.h>

#include "presence_proto.h"

#define REQ_VERB "PRESENCE "
#define REQ_VERB_LEN (sizeof(REQ_VERB) - 1)

int pl_presence_parse_request(const char *line, size_t len, char *jid, size_t jidlen)
{
    const char *nl = memchr(line, '\n', len);
    size_t n = nl ? (size_t)(nl - line) : len, arg;

    if (n > 0 && line[n - 1] == '\r')
        n--;
    if (n <= REQ_VERB_LEN || memcmp(line, REQ_VERB, REQ_VERB_LEN) != 0)
        return -1;
    arg = n - REQ_VERB_LEN;
    /* A NUL or a lone CR would make the JID the caller checks differ from
     * the bytes the client sent: refuse the request instead. */
    if (memchr(line + REQ_VERB_LEN, '\0', arg) != NULL ||
        memchr(line + REQ_VERB_LEN, '\r', arg) != NULL || arg >= jidlen)
        return -1;
    memcpy(jid, line + REQ_VERB_LEN, arg);
    jid[arg] = '\0';
    return 0;
}
