/* tag_milter.h -- what the postlink-tag milter's files share: settings read
 * once at start-up, the keys, the store, and one message's facts as the
 * callbacks collect them. */
#ifndef PL_TAG_MILTER_H
#define PL_TAG_MILTER_H

#include <stdint.h>

#include "milter_api.h"

#include "conf.h"
#include "conf_params.h"
#include "messenger.h"
#include "store.h"
#include "strutil.h"
#include "tagsig.h"

struct tag_milter {
    const struct pl_cfg *_Atomic cfg; /* enabled_domains; replaced by SIGHUP */
    pl_store *store;
    struct pl_tagkeys keys;
    const char *xmpp_jid, *lookup_socket, *hostname;
    _Atomic int64_t max_age;          /* replaced by SIGHUP */
    _Atomic unsigned presence_ms;     /* replaced by SIGHUP */
};

extern struct tag_milter tm;
extern const struct pl_filter tag_filter;

/* The module's life in a milter process (tag_module.c). */
int tag_module_configure(const pl_conf *conf, const struct pl_cfg *cfg, int reload, char *err,
                         size_t errlen);
void tag_module_start(pl_store *store);
void tag_module_finish(void);

#define TAG_ADDRMAX 320
#define TAG_BOUND_MAX 1000           /* header fields a tag may bind (pl_tag_bound) */

/* One message, as the callbacks saw it. */
struct tag_msg {
    char auth[TAG_ADDRMAX];          /* canonical SASL login, "" if none */
    struct pl_strvec rcpt;           /* canonical envelope recipients */
    struct pl_strvec visible;        /* addresses named in To and Cc, canonical */
    char from[TAG_ADDRMAX];          /* From address, canonical, "" if none/several */
    char msgid[1000];                /* "<...>" or "" */
    char subject[512], date[128];
    char jabber_id[TAG_ADDRMAX];     /* the only Jabber-ID, canonical; "" if none */
    char mailid[64], tag[600];       /* the only X-Mail-Id / X-Postlink-Tag */
    unsigned n_jabber, n_mailid, n_tag, n_presence, n_chat, n_from, n_msgid;
    struct pl_strvec bound;          /* the fields a tag binds, canonical (tagcanon.h) */
    unsigned n_bound;                /* how many there were (more than TAG_BOUND_MAX: no tag) */
    struct pl_bodyhash *body;        /* the body's hash, when a tag is made or checked */
    int body_wanted;                 /* 0 not decided yet, 1 hashing, -1 not needed */
    char bh[PL_BODYHASH_B64 + 1];    /* the body's hash at the end of the message */
};

/* The fields a tag binds, for pl_tag_make / pl_tag_verify. */
void tag_input(const struct tag_msg *m, const char *account, const char *mailid,
               struct pl_tagin *in);

/* tag_outgoing.c: tag mail a linked sender submits.  Sets *tagged when it
 * tagged the mail.  Returns 1 when presence may be shown (sharing on; jid
 * and mailid set), 0 when not, -1 on a store or milter error. */
int tag_outgoing(pl_mctx *ctx, struct tag_msg *m, const char *qid, char *mailid, char *jid,
                 int *tagged);

/* tag_incoming.c: check the tag of any other mail.  1 valid and presence
 * may be shown to these recipients (jid and mailid set), 0 no, -1 error. */
int tag_incoming(pl_mctx *ctx, struct tag_msg *m, const char *qid, char *mailid, char *jid);

/* tag_annotate.c: add X-Messenger-Presence and X-Messenger-Chat. */
int tag_annotate(pl_mctx *ctx, const char *qid, const char *jid, const char *mailid);

/* Remove every instance of a header field (count seen); -1 on error. */
int tag_strip(pl_mctx *ctx, const char *name, unsigned count);

/* Nonzero if any envelope recipient is in enabled_domains. */
int tag_has_local(const struct tag_msg *m);
/* Nonzero if every envelope recipient is one of mail-id's. */
int tag_rcpts_in(const struct tag_msg *m, const struct pl_mailid *rec);
/* The envelope recipients as a mail-id record keeps them: space-separated,
 * "~" before those not named in To/Cc. */
void tag_rcpt_list(const struct tag_msg *m, char *out, size_t len);

#endif
