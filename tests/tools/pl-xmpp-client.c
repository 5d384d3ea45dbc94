/* pl-xmpp-client.c -- a small XMPP client for the tests (libstrophe): it
 * plays a user's chat program against the harness's Prosody.  It logs in,
 * sends its presence, optionally approves subscription requests, sends
 * messages, joins rooms it is invited to, and writes what it receives to a
 * log file, one line per event:
 *   READY                         logged in, presence sent
 *   SUBSCRIBE <from>              a subscription request (approved with -a)
 *   MSG <from> <body>             a chat/normal message (newlines as " | ")
 *   INVITE <room> <from> [reason] an invitation to a room (joined with -J)
 *   GROUPCHAT <room/nick> <body>  a message in a room
 *   DISCONNECTED
 * It runs until SIGTERM/SIGINT (then goes offline cleanly) or -t seconds.
 *
 * usage: pl-xmpp-client -j JID -p PASS -s HOST:PORT -l LOG
 *          [-w online|away|dnd|xa] [-a] [-J] [-m TO=BODY]... [-t SECONDS] */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <strophe.h>

static FILE *evlog;
static const char *show = "online", *jid;
static int approve, join_rooms;
static char *sends[16];
static int nsends;
static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

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

static int on_presence(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    xmpp_ctx_t *ctx = ud;
    const char *type = xmpp_stanza_get_type(st), *from = xmpp_stanza_get_from(st);
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
    } else if (body) {
        one_line(body);
        event(type && strcmp(type, "groupchat") == 0 ? "GROUPCHAT" : "MSG", from ? from : "-", body);
    }
    if (body)
        xmpp_free(ctx, body);
    return 1;
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
    for (int i = 0; i < nsends; i++) {
        char *eq = strchr(sends[i], '=');
        xmpp_stanza_t *m;
        if (eq == NULL)
            continue;
        *eq = '\0';
        m = xmpp_message_new(ctx, "chat", sends[i], NULL);
        xmpp_message_set_body(m, eq + 1);
        xmpp_send(conn, m);
        xmpp_stanza_release(m);
        *eq = '=';
    }
    event("READY", NULL, NULL);
}

int main(int argc, char **argv)
{
    const char *pass = NULL, *server = NULL, *logpath = NULL;
    char host[256] = "127.0.0.1";
    unsigned short port = 5222;
    long seconds = 0;
    int ch;

    while ((ch = getopt(argc, argv, "j:p:s:l:w:aJm:t:")) != -1) {
        switch (ch) {
        case 'j': jid = optarg; break;
        case 'p': pass = optarg; break;
        case 's': server = optarg; break;
        case 'l': logpath = optarg; break;
        case 'w': show = optarg; break;
        case 'a': approve = 1; break;
        case 'J': join_rooms = 1; break;
        case 'm': if (nsends < 16) sends[nsends++] = optarg; break;
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
    while (!stop && (!end || time(NULL) < end))
        xmpp_run_once(ctx, 100);
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
                    " [-a] [-J] [-m TO=BODY]... [-t SECONDS]\n");
    return 64;
}
