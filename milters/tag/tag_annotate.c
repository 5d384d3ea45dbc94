/* tag_annotate.c -- X-Messenger-Presence (online, away, offline, unknown)
 * from postlink-xmppd within presence_timeout_ms, and X-Messenger-Chat, an
 * XMPP URI (RFC 5122) that opens a chat with postlink-xmppd's own JID and
 * carries only the mail-id.  A lookup that fails or runs out of time says
 * unknown: the mail is never delayed longer than the budget. */
#include "config.h"

#include <stdio.h>
#include <syslog.h>

#include "log.h"
#include "presence_client.h"
#include "tag_milter.h"

int tag_annotate(pl_mctx *ctx, const char *qid, const char *jid, const char *mailid)
{
    char word[128], chat[TAG_ADDRMAX + 128];

    if (pl_presence_ask(tm.lookup_socket, jid, tm.presence_ms, word, sizeof(word)) != 0) {
        msg_qid(LOG_INFO, qid, "postlink-tag: presence of %s unknown: %s", jid, word);
        snprintf(word, sizeof(word), "unknown");
    }
    if (pl_mf_addheader(ctx, "X-Messenger-Presence", word) != 0)
        return -1;
    if (*tm.xmpp_jid) {
        snprintf(chat, sizeof(chat), "<xmpp:%s?message;body=%s>", tm.xmpp_jid, mailid);
        if (pl_mf_addheader(ctx, "X-Messenger-Chat", chat) != 0)
            return -1;
    }
    msg_qid(LOG_INFO, qid, "postlink-tag: mail-id=%s account=%s presence=%s", mailid, jid, word);
    return 0;
}
