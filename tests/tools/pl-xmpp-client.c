/* pl-xmpp-client.c -- a small XMPP client for the tests (libstrophe): it
 * plays a user's chat program against the harness's Prosody.  It logs in,
 * sends its presence, optionally approves subscription requests, sends
 * messages, joins rooms it is invited to, and writes what it receives to a
 * log file, one line per event:
 *   READY                         logged in, presence sent
 *   SUBSCRIBE <from>              a subscription request (approved with -a)
 *   MSG <from> <body>             a chat/normal message (newlines as " | ")
 *   INVITE <room> <from> [reason] an invitation to a room (joined with -J)
 *   JOINED <room>                 the room accepted our join (its presence
 *                                 for us, status 110)
 *   JOINERR <room> <condition>    the room refused it (registration-required...)
 *   OCCUPANTS <room> <n>          n occupants (us included) are in the room
 *   SAID <room> <body>            we said -G's body in the room
 *   GROUPCHAT <room/nick> <body>  a message in a room
 *   SYNC <n>                      our n-th SIGUSR1 marker came back to us
 *   DISCONNECTED
 * -G BODY: say BODY once in each room we join, as soon as -N occupants (us
 * included, default 1) are in it.  -u TO=BODY: sent on every SIGUSR1, then
 * a message to ourselves that comes back as SYNC <n>: whatever the server
 * had queued for us before it has been logged by then.
 * It runs until SIGTERM/SIGINT (then goes offline cleanly) or -t seconds.
 *
 * usage: pl-xmpp-client -j JID -p PASS -s HOST:PORT -l LOG
 *          [-w online|away|dnd|xa] [-a] [-J] [-m TO=BODY]... [-u TO=BODY]...
 *          [-G BODY [-N OCCUPANTS]] [-t SECONDS] */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <strophe.h>

static FILE *evlog;
static const char *show = "online", *jid;
static int approve, join_rooms;
static char *sends[16], *usr1_sends[16];
static int nsends, nusr1;
static const char *say;
static int say_when = 1;
static volatile sig_atomic_t stop, usr1;
static unsigned syncs;

/* The rooms we joined, and who is in each. */
#define MAXROOMS 8
#define MAXOCC 32
static struct room {
    char jid[512];
    char occ[MAXOCC][256];
    int nocc, said;
} rooms[MAXROOMS];
static int nrooms;

static void on_signal(int sig) { (void)sig; stop = 1; }
static void on_usr1(int sig) { (void)sig; usr1 = 1; }

/* One log line: KIND [A [B]] */
static void event(const char *kind, const char *a, const char *b)
{
    fprintf(evlog, "%s%s%s%s%s\n", kind, a ? " " : "", a ? a : "", b ? " " : "", b ? b : "");
    fflush(evlog);
}

static void send_presence(xmpp_conn_t *conn, xmpp_ctx_t *ctx, const char *to, const char *type)
{
    xmpp_stanza_t *p = xmpp_presence_new(ctx);
    if (to)
        xmpp_stanza_set_to(p, to);
    if (type)
        xmpp_stanza_set_type(p, type);
    if (!to && !type && strcmp(show, "online") != 0) {
        xmpp_stanza_t *s = xmpp_stanza_new(ctx), *t = xmpp_stanza_new(ctx);
        xmpp_stanza_set_name(s, "show");
        xmpp_stanza_set_text(t, show);
        xmpp_stanza_add_child_ex(s, t, 0);
        xmpp_stanza_add_child_ex(p, s, 0);
    }
    xmpp_send(conn, p);
    xmpp_stanza_release(p);
}

static void join(xmpp_conn_t *conn, xmpp_ctx_t *ctx, const char *room)
{
    char to[600];
    if (nrooms < MAXROOMS) {
        memset(&rooms[nrooms], 0, sizeof(rooms[nrooms]));
        snprintf(rooms[nrooms++].jid, sizeof(rooms[0].jid), "%s", room);
    }
    xmpp_stanza_t *p = xmpp_presence_new(ctx), *x = xmpp_stanza_new(ctx);
    char *node = xmpp_jid_node(ctx, jid);
    snprintf(to, sizeof(to), "%s/%s", room, node ? node : "guest");
    xmpp_free(ctx, node);
    xmpp_stanza_set_to(p, to);
    xmpp_stanza_set_name(x, "x");
    xmpp_stanza_set_ns(x, "http://jabber.org/protocol/muc");
    xmpp_stanza_add_child_ex(p, x, 0);
    xmpp_send(conn, p);
    xmpp_stanza_release(p);
}

static struct room *room_of(const char *from, const char **nick)
{
    const char *slash = from ? strchr(from, '/') : NULL;
    if (slash == NULL)
        return NULL;
    for (int i = 0; i < nrooms; i++)
        if (strlen(rooms[i].jid) == (size_t)(slash - from) &&
            strncasecmp(rooms[i].jid, from, (size_t)(slash - from)) == 0) {
            *nick = slash + 1;
            return &rooms[i];
        }
    return NULL;
}

static void groupchat(xmpp_conn_t *conn, xmpp_ctx_t *ctx, const char *room, const char *body)
{
    xmpp_stanza_t *m = xmpp_message_new(ctx, "groupchat", room, NULL);
    xmpp_message_set_body(m, body);
    xmpp_send(conn, m);
    xmpp_stanza_release(m);
}

/* A presence from a room we joined: ourselves in (110), refused, or
 * someone coming or going. */
static void room_presence(xmpp_conn_t *conn, xmpp_ctx_t *ctx, struct room *r, const char *nick,
                          xmpp_stanza_t *st, const char *type)
{
    xmpp_stanza_t *x = xmpp_stanza_get_child_by_ns(st, "http://jabber.org/protocol/muc#user");
    char n[16];
    int i, self = 0;

    if (type && strcmp(type, "error") == 0) {
        xmpp_stanza_t *e = xmpp_stanza_get_child_by_name(st, "error"), *c;
        const char *cond = "unknown";
        for (c = e ? xmpp_stanza_get_children(e) : NULL; c; c = xmpp_stanza_get_next(c))
            if (xmpp_stanza_get_name(c) && strcmp(xmpp_stanza_get_name(c), "text") != 0) {
                cond = xmpp_stanza_get_name(c);
                break;
            }
        event("JOINERR", r->jid, cond);
        return;
    }
    for (xmpp_stanza_t *c = x ? xmpp_stanza_get_children(x) : NULL; c; c = xmpp_stanza_get_next(c)) {
        const char *code = xmpp_stanza_get_attribute(c, "code");
        if (xmpp_stanza_get_name(c) && strcmp(xmpp_stanza_get_name(c), "status") == 0 && code &&
            strcmp(code, "110") == 0)
            self = 1;
    }
    for (i = 0; i < r->nocc && strcmp(r->occ[i], nick) != 0; i++)
        ;
    if (type && strcmp(type, "unavailable") == 0) {
        if (i < r->nocc) {
            memmove(&r->occ[i], &r->occ[i + 1], (size_t)(r->nocc - i - 1) * sizeof(r->occ[0]));
            r->nocc--;
        }
    } else if (i == r->nocc && r->nocc < MAXOCC) {
        snprintf(r->occ[r->nocc++], sizeof(r->occ[0]), "%s", nick);
    }
    if (self && !(type && strcmp(type, "unavailable") == 0))
        event("JOINED", r->jid, NULL);
    snprintf(n, sizeof(n), "%d", r->nocc);
    event("OCCUPANTS", r->jid, n);
    if (say && !r->said && r->nocc >= say_when) {
        groupchat(conn, ctx, r->jid, say);
        r->said = 1;
        event("SAID", r->jid, say);
    }
}

static int on_presence(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    xmpp_ctx_t *ctx = ud;
    const char *type = xmpp_stanza_get_type(st), *from = xmpp_stanza_get_from(st), *nick;
    struct room *r = room_of(from, &nick);
    if (r) {
        room_presence(conn, ctx, r, nick, st, type);
        return 1;
    }
    if (type && strcmp(type, "subscribe") == 0 && from) {
        event("SUBSCRIBE", from, NULL);
        if (approve)
            send_presence(conn, ctx, from, "subscribed");
    }
    return 1;
}

static void one_line(char *s)
{
    for (; s && *s; s++)
        if (*s == '\n' || *s == '\r')
            *s = '|';
}

static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    xmpp_ctx_t *ctx = ud;
    const char *type = xmpp_stanza_get_type(st), *from = xmpp_stanza_get_from(st);
    xmpp_stanza_t *x;
    char *body = xmpp_message_get_body(st);

    (void)conn;
    if ((x = xmpp_stanza_get_child_by_ns(st, "jabber:x:conference")) != NULL) {
        const char *room = xmpp_stanza_get_attribute(x, "jid"), *why = xmpp_stanza_get_attribute(x, "reason");
        char who[1200];
        snprintf(who, sizeof(who), "%s%s%s", from ? from : "-", why ? " " : "", why ? why : "");
        one_line(who);
        event("INVITE", room ? room : "-", who);
        if (join_rooms && room)
            join(conn, ctx, room);
    } else if ((x = xmpp_stanza_get_child_by_ns(st, "http://jabber.org/protocol/muc#user")) != NULL &&
               xmpp_stanza_get_child_by_name(x, "invite") != NULL) {
        xmpp_stanza_t *inv = xmpp_stanza_get_child_by_name(x, "invite");
        event("INVITE", from ? from : "-", xmpp_stanza_get_attribute(inv, "from"));
        if (join_rooms && from)
            join(conn, ctx, from);
    } else if (body && from && strncmp(body, "SYNC ", 5) == 0 && strcmp(from, xmpp_conn_get_bound_jid(conn)) == 0) {
        event("SYNC", body + 5, NULL);
    } else if (body) {
        one_line(body);
        event(type && strcmp(type, "groupchat") == 0 ? "GROUPCHAT" : "MSG", from ? from : "-", body);
    }
    if (body)
        xmpp_free(ctx, body);
    return 1;
}

/* Send "TO=BODY" chat messages. */
static void send_all(xmpp_conn_t *conn, xmpp_ctx_t *ctx, char **v, int n)
{
    for (int i = 0; i < n; i++) {
        char *eq = strchr(v[i], '=');
        xmpp_stanza_t *m;
        if (eq == NULL)
            continue;
        *eq = '\0';
        m = xmpp_message_new(ctx, "chat", v[i], NULL);
        xmpp_message_set_body(m, eq + 1);
        xmpp_send(conn, m);
        xmpp_stanza_release(m);
        *eq = '=';
    }
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                    xmpp_stream_error_t *se, void *ud)
{
    xmpp_ctx_t *ctx = ud;
    (void)error;
    (void)se;
    if (status != XMPP_CONN_CONNECT) {
        event("DISCONNECTED", NULL, NULL);
        stop = 1;
        return;
    }
    xmpp_handler_add(conn, on_presence, NULL, "presence", NULL, ctx);
    xmpp_handler_add(conn, on_message, NULL, "message", NULL, ctx);
    send_presence(conn, ctx, NULL, NULL);
    send_all(conn, ctx, sends, nsends);
    event("READY", NULL, NULL);
}

/* SIGUSR1: -u's messages, then the marker to ourselves. */
static void on_usr1_now(xmpp_conn_t *conn, xmpp_ctx_t *ctx)
{
    char body[32];
    xmpp_stanza_t *m;
    send_all(conn, ctx, usr1_sends, nusr1);
    snprintf(body, sizeof(body), "SYNC %u", ++syncs);
    m = xmpp_message_new(ctx, "chat", xmpp_conn_get_bound_jid(conn), NULL);
    xmpp_message_set_body(m, body);
    xmpp_send(conn, m);
    xmpp_stanza_release(m);
}

int main(int argc, char **argv)
{
    const char *pass = NULL, *server = NULL, *logpath = NULL;
    char host[256] = "127.0.0.1";
    unsigned short port = 5222;
    long seconds = 0;
    int ch;

    while ((ch = getopt(argc, argv, "j:p:s:l:w:aJm:u:G:N:t:")) != -1) {
        switch (ch) {
        case 'j': jid = optarg; break;
        case 'p': pass = optarg; break;
        case 's': server = optarg; break;
        case 'l': logpath = optarg; break;
        case 'w': show = optarg; break;
        case 'a': approve = 1; break;
        case 'J': join_rooms = 1; break;
        case 'm': if (nsends < 16) sends[nsends++] = optarg; break;
        case 'u': if (nusr1 < 16) usr1_sends[nusr1++] = optarg; break;
        case 'G': say = optarg; break;
        case 'N': say_when = atoi(optarg); break;
        case 't': seconds = atol(optarg); break;
        default: goto usage;
        }
    }
    if (!jid || !pass || !server || !logpath)
        goto usage;
    if (sscanf(server, "%255[^:]:%hu", host, &port) != 2)
        goto usage;
    if ((evlog = fopen(logpath, "a")) == NULL) {
        perror(logpath);
        return 1;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGUSR1, on_usr1);
    xmpp_initialize();
    xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);
    xmpp_conn_t *conn = xmpp_conn_new(ctx);
    xmpp_conn_set_flags(conn, XMPP_CONN_FLAG_DISABLE_TLS);
    xmpp_conn_set_jid(conn, jid);
    xmpp_conn_set_pass(conn, pass);
    if (xmpp_connect_client(conn, host, port, on_conn, ctx) != XMPP_EOK) {
        fprintf(stderr, "pl-xmpp-client: cannot connect to %s\n", server);
        return 1;
    }
    time_t end = seconds ? time(NULL) + seconds : 0;
    while (!stop && (!end || time(NULL) < end)) {
        xmpp_run_once(ctx, 100);
        if (usr1 && xmpp_conn_is_connected(conn)) {
            usr1 = 0;
            on_usr1_now(conn, ctx);
        }
    }
    if (xmpp_conn_is_connected(conn)) {
        send_presence(conn, ctx, NULL, "unavailable");
        xmpp_disconnect(conn);
        for (int i = 0; i < 10; i++)
            xmpp_run_once(ctx, 50);
    }
    xmpp_conn_release(conn);
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    fclose(evlog);
    return 0;
usage:
    fprintf(stderr, "usage: pl-xmpp-client -j JID -p PASS -s HOST:PORT -l LOG [-w online|away|dnd|xa]"
                    " [-a] [-J] [-m TO=BODY]... [-u TO=BODY]... [-G BODY [-N OCCUPANTS]] [-t SECONDS]\n");
    return 64;
}
