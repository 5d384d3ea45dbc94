/* xmppd.h -- what postlink-xmppd's files share.  One thread runs libstrophe
 * (the XMPP session, roster, presence, chat requests); the lookup thread
 * answers the milter from the presence table, which a mutex guards. */
#ifndef PL_XMPPD_H
#define PL_XMPPD_H

#include <stdint.h>

#include <strophe.h>

#include "conf_params.h"
#include "messenger.h"
#include "store.h"

struct xmppd {
    const struct pl_cfg *_Atomic cfg;  /* enabled_domains; replaced by SIGHUP */
    pl_store *store;
    const char *jid, *muc_service;
    char *password;
    _Atomic int64_t tag_max_age;       /* replaced by SIGHUP */
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;           /* NULL while disconnected */
    int online;                  /* session established, roster loaded */
};

extern struct xmppd xd;

/* ---- xmppd_roster.c: subscriptions and presence ---- */
/* After login: ask for the roster, send our presence. */
void roster_start(xmpp_conn_t *conn);
/* Bring subscriptions in line with the links in the store (every few s). */
void roster_reconcile(void);
/* Forget every resource (the session ended): lookups answer unknown. */
void roster_disconnected(void);
/* The presence of a bare JID as the milter should see it. */
enum pl_presence roster_presence(const char *jid);
/* Nonzero if jid is online or away (for group chat invitations). */
int roster_available(const char *jid);

/* ---- xmppd_chat.c: "chat about this mail" requests ---- */
int chat_on_message(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud);
/* Send a chat message from our JID. */
void chat_send(const char *to, const char *body);

/* ---- xmppd_lookup.c: the milter's presence lookups ---- */
/* Make the socket (as root, owned like db_home, group postfix, 0660),
 * then, after dropping privileges, serve it in a thread.  0 or -1
 * (message logged). */
int lookup_listen(const char *path, const char *user);
int lookup_run(void);


#endif
