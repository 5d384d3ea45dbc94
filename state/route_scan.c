/* route_scan.c -- the text the routing rules search, decoded with GMime:
 * header fields with RFC 2047 words decoded, and the text parts of the
 * body with their transfer encoding (base64, quoted-printable) undone and
 * their charset converted to UTF-8.  Trace, address and id fields are
 * left out: an address is judged by its own recipient's rules, and a
 * Received line or a Message-ID is no place for a phone number. */
#include "config.h"

#include <gmime/gmime.h>
#include <string.h>
#include <strings.h>

#include "route_decide.h"
#include "strutil.h"

static const char *const skipped[] = {
    "Received", "Return-Path", "Message-ID", "References", "In-Reply-To", "Date",
    "DKIM-Signature", "Authentication-Results", "To", "Cc", "Bcc", "From", "Sender",
    "Reply-To", "X-Postlink-Route", "X-Postlink-Tag", "MIME-Version", "Content-Transfer-Encoding",
    NULL,
};

static int skip_field(const char *name)
{
    if (strncasecmp(name, "Resent-", 7) == 0 || strncasecmp(name, "ARC-", 4) == 0)
        return 1;
    for (const char *const *s = skipped; *s; s++)
        if (strcasecmp(name, *s) == 0)
            return 1;
    return 0;
}

struct walk { struct pl_strbuf body; size_t max; int cut; };

static void add_part(GMimeObject *parent, GMimeObject *part, gpointer data)
{
    struct walk *w = data;
    (void)parent;
    if (!GMIME_IS_TEXT_PART(part) || w->body.len >= w->max) {
        if (GMIME_IS_TEXT_PART(part))
            w->cut = 1;
        return;
    }
    GMimeContentDisposition *d = g_mime_object_get_content_disposition(part);
    if (d && g_mime_content_disposition_is_attachment(d))
        return;
    char *text = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
    if (text == NULL)
        return;
    size_t n = strlen(text), room = w->max - w->body.len;
    if (n > room) {
        n = room;
        w->cut = 1;
    }
    pl_strbuf_addn(&w->body, text, n);
    pl_strbuf_addc(&w->body, '\n');
    g_free(text);
}

int route_text_from_message(const char *msg, size_t len, size_t max_body, struct route_text *text)
{
    GMimeStream *st = g_mime_stream_mem_new_with_buffer(msg, len);
    GMimeParser *p = g_mime_parser_new_with_stream(st);
    GMimeMessage *m = g_mime_parser_construct_message(p, NULL);
    struct pl_strbuf h = {0};
    struct walk w = {{0}, max_body, 0};

    memset(text, 0, sizeof(*text));
    g_object_unref(p);
    g_object_unref(st);
    if (m == NULL)
        return -1;
    GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(m));
    int n = g_mime_header_list_get_count(hl);
    for (int i = 0; i < n; i++) {
        GMimeHeader *hd = g_mime_header_list_get_header_at(hl, i);
        const char *name = g_mime_header_get_name(hd), *raw = g_mime_header_get_raw_value(hd);
        if (name == NULL || skip_field(name))
            continue;
        char *v = raw ? g_mime_utils_header_decode_text(NULL, raw) : NULL;
        for (char *c = v; c && *c; c++)          /* unfold: one field per line */
            if (*c == '\r' || *c == '\n')
                *c = ' ';
        pl_strbuf_addf(&h, "%s: %s\n", name, v ? v : "");
        g_free(v);
    }
    g_mime_message_foreach(m, add_part, &w);
    /* a single-part message with no Content-Type is text/plain too */
    g_object_unref(m);
    text->headers = h.s ? h.s : pl_xstrdup("");
    text->hlen = h.len;
    text->body = w.body.s ? w.body.s : pl_xstrdup("");
    text->blen = w.body.len;
    text->body_cut = w.cut;
    return 0;
}

void route_text_free(struct route_text *text)
{
    free(text->headers);
    free(text->body);
    memset(text, 0, sizeof(*text));
}
