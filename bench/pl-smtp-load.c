/* pl-smtp-load.c -- the load client of bench/run milters where smtp-source
 * does not fit: S parallel sessions send N messages in all, one message
 * per connection (connect, EHLO, [AUTH PLAIN], MAIL, RCPT, DATA, QUIT,
 * close), from a message file whose "@@ID@@" marks are replaced by a
 * unique id per message (so that each has its own Message-ID).  The file
 * must be CRLF text with no line starting with '.' (bench/msg.sh makes
 * such files).  Exits 0 when every message got 250 after DATA.
 * usage: pl-smtp-load -s S -m N -f FROM -t TO -F FILE [-a USER:PASS] HOST:PORT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *from, *to, *auth64;
static char *tmpl;
static size_t tmpl_len;
static struct sockaddr_in addr;
static atomic_int next_msg, failed;
static int total;

struct conn { int fd; char buf[4096]; size_t len; };

/* One SMTP reply (all its lines); returns its code or -1. */
static int reply(struct conn *c)
{
    for (;;) {
        char *nl;
        while ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
            size_t n = (size_t)(nl - c->buf) + 1;
            int code = atoi(c->buf), last = n > 4 && c->buf[3] == ' ';
            memmove(c->buf, c->buf + n, c->len - n);
            c->len -= n;
            if (last || n <= 4)
                return code;
        }
        if (c->len == sizeof(c->buf))
            return -1;
        ssize_t r = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
        if (r <= 0)
            return -1;
        c->len += (size_t)r;
    }
}

static int put(struct conn *c, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(c->fd, s, n);
        if (w <= 0)
            return -1;
        s += w, n -= (size_t)w;
    }
    return 0;
}

/* Send PRE ARG POST CRLF and expect a reply of WANT's class. */
static int cmd(struct conn *c, int want, const char *pre, const char *arg, const char *post)
{
    char line[1024];
    int n = snprintf(line, sizeof(line), "%s%s%s\r\n", pre, arg, post);
    if (n < 0 || (size_t)n >= sizeof(line) || put(c, line, (size_t)n) != 0)
        return -1;
    return reply(c) / 100 == want / 100 ? 0 : -1;
}

/* The message with each @@ID@@ replaced by ID, then the final dot. */
static int send_body(struct conn *c, const char *id)
{
    const char *p = tmpl, *end = tmpl + tmpl_len, *m;
    while ((m = memmem(p, (size_t)(end - p), "@@ID@@", 6)) != NULL) {
        if (put(c, p, (size_t)(m - p)) != 0 || put(c, id, strlen(id)) != 0)
            return -1;
        p = m + 6;
    }
    if (put(c, p, (size_t)(end - p)) != 0 || put(c, ".\r\n", 3) != 0)
        return -1;
    return reply(c) == 250 ? 0 : -1;
}

static int one(int i)
{
    struct conn c = { .len = 0 };
    char id[64];
    int ok = -1, on = 1;
    snprintf(id, sizeof(id), "%d.%ld.%d", getpid(), (long)time(NULL), i);
    c.fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c.fd < 0)
        return -1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (connect(c.fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 && reply(&c) == 220 &&
        cmd(&c, 250, "EHLO ", "load.bench.example", "") == 0 &&
        (auth64 == NULL || cmd(&c, 235, "AUTH PLAIN ", auth64, "") == 0) &&
        cmd(&c, 250, "MAIL FROM:<", from, ">") == 0 && cmd(&c, 250, "RCPT TO:<", to, ">") == 0 &&
        cmd(&c, 354, "DATA", "", "") == 0 && send_body(&c, id) == 0) {
        ok = 0;
        cmd(&c, 221, "QUIT", "", "");
    }
    close(c.fd);
    return ok;
}

static void *worker(void *arg)
{
    (void)arg;
    int i;
    while ((i = atomic_fetch_add(&next_msg, 1)) < total)
        if (one(i) != 0 && atomic_fetch_add(&failed, 1) < 5)
            fprintf(stderr, "pl-smtp-load: message %d failed\n", i);
    return NULL;
}

static char *b64(const unsigned char *s, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc(4 * (n / 3 + 1) + 1), *q = o;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) |
                     (i + 2 < n ? s[i + 2] : 0);
        *q++ = t[v >> 18 & 63], *q++ = t[v >> 12 & 63];
        *q++ = i + 1 < n ? t[v >> 6 & 63] : '=';
        *q++ = i + 2 < n ? t[v & 63] : '=';
    }
    *q = '\0';
    return o;
}

static int usage(void)
{
    fprintf(stderr, "usage: pl-smtp-load -s S -m N -f FROM -t TO -F FILE [-a USER:PASS] HOST:PORT\n");
    return 64;
}

int main(int argc, char **argv)
{
    int s = 1, opt;
    const char *file = NULL, *cred = NULL;
    while ((opt = getopt(argc, argv, "s:m:f:t:F:a:")) != -1) {
        switch (opt) {
        case 's': s = atoi(optarg); break;
        case 'm': total = atoi(optarg); break;
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 'F': file = optarg; break;
        case 'a': cred = optarg; break;
        default: return usage();
        }
    }
    if (optind != argc - 1 || s < 1 || s > 256 || total < 1 || !from || !to || !file)
        return usage();
    char *colon = strrchr(argv[optind], ':');
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    if (colon == NULL || (*colon = '\0', inet_pton(AF_INET, argv[optind], &addr.sin_addr)) != 1)
        return usage();
    addr.sin_port = htons((unsigned short)atoi(colon + 1));
    if (cred != NULL) {   /* AUTH PLAIN: "\0user\0pass" */
        const char *c = strchr(cred, ':');
        if (c == NULL)
            return usage();
        size_t ul = (size_t)(c - cred), pl = strlen(c + 1);
        unsigned char *raw = malloc(ul + pl + 2);
        raw[0] = 0, memcpy(raw + 1, cred, ul), raw[ul + 1] = 0, memcpy(raw + ul + 2, c + 1, pl);
        auth64 = b64(raw, ul + pl + 2);
        free(raw);
    }
    FILE *f = fopen(file, "rb");
    long flen = -1;
    if (f != NULL && fseek(f, 0, SEEK_END) == 0)
        flen = ftell(f);
    if (flen < 0 || fseek(f, 0, SEEK_SET) != 0 || (tmpl = malloc((size_t)flen + 1)) == NULL ||
        fread(tmpl, 1, (size_t)flen, f) != (size_t)flen) {
        fprintf(stderr, "pl-smtp-load: cannot read %s\n", file);
        return 66;
    }
    tmpl_len = (size_t)flen;
    fclose(f);
    pthread_t th[256];
    for (int i = 0; i < s; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < s; i++)
        pthread_join(th[i], NULL);
    int bad = atomic_load(&failed);
    printf("sent %d failed %d\n", total - bad, bad);
    return bad == 0 ? 0 : 1;
}
