/*
 * postlink-sink -- minimal ESMTP server used as the "outside world" in
 * postlink's integration tests: the private Postfix relays everything that
 * leaves it here, and tests look at the files this program writes.
 *
 *   postlink-sink -l 127.0.0.1:PORT -d DIR [-p PIDFILE] [-r CODE:ADDR]... [-D CODE]
 *
 * One file per SMTP transaction, written atomically into DIR (dot-prefixed
 * temp name, fsync, rename to <unixtime>.<pid>.<seq>.eml):
 *   X-Envelope-From: <addr>\r\n
 *   X-Envelope-To: <addr>\r\n       (one per accepted recipient)
 *   DATA exactly as received, dot-unstuffed, without the final ".\r\n"
 * Test knobs: -r CODE:ADDR answers RCPT TO:<ADDR> with CODE (repeatable);
 * -D CODE answers the end of DATA with CODE (nothing is stored unless 2xx).
 * Foreground, one child per connection, SIGTERM ends it cleanly.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXLINE 8192
#define MAXRULES 16

static const char *dir;
static const char *rule_addr[MAXRULES];
static int rule_code[MAXRULES], nrules, data_code = 250;
static volatile sig_atomic_t stop;
static pid_t kids[256];     /* live children, stopped and reaped on exit */
static size_t nkids;

static void forget(pid_t pid)
{
    for (size_t i = 0; i < nkids; i++)
        if (kids[i] == pid) { kids[i] = kids[--nkids]; break; }
}

/* ---- buffered reader over the client socket ---- */
static int cfd;
static unsigned char rbuf[65536];
static size_t rpos, rlen;

static int rd_getc(void)
{
    if (rpos == rlen) {
        ssize_t n;
        do n = read(cfd, rbuf, sizeof rbuf); while (n < 0 && errno == EINTR);
        if (n <= 0) return -1;
        rpos = 0; rlen = (size_t)n;
    }
    return rbuf[rpos++];
}

/* Read one command line without CR LF. Returns length, -1 on EOF, -2 if too long. */
static int rd_line(char *buf, size_t size)
{
    size_t n = 0;
    int c, toolong = 0;
    while ((c = rd_getc()) >= 0 && c != '\n') {
        if (n + 1 < size) buf[n++] = (char)c; else toolong = 1;
    }
    if (c < 0) return -1;
    if (n > 0 && buf[n - 1] == '\r') n--;
    buf[n] = '\0';
    return toolong ? -2 : (int)n;
}

static void reply(const char *fmt, ...)
{
    char out[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, sizeof out - 2, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof out - 3) n = (int)sizeof out - 3;
    out[n++] = '\r'; out[n++] = '\n';
    for (int off = 0; off < n;) {
        ssize_t w = write(cfd, out + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) _exit(1);
        off += (int)w;
    }
}

/* "FROM:<addr> params" -> addr (copied into out). Quotes and \ escapes respected. */
static int parse_path(const char *arg, const char *kw, char *out, size_t size)
{
    size_t kl = strlen(kw), n = 0;
    int q = 0;
    if (strncasecmp(arg, kw, kl) != 0) return -1;
    arg += kl;
    while (*arg == ' ') arg++;
    if (*arg++ != '<') return -1;
    for (; *arg; arg++) {
        if (!q && *arg == '>') break;
        if (*arg == '"') q = !q;
        else if (*arg == '\\' && arg[1]) { if (n + 1 < size) out[n++] = *arg; arg++; }
        if (n + 1 >= size) return -1;
        out[n++] = *arg;
    }
    if (*arg != '>') return -1;
    out[n] = '\0';
    return 0;
}

/* Receive DATA into f, dot-unstuffing. 0 = complete, -1 = connection lost. */
static int recv_data(FILE *f)
{
    int c, bol = 1;
    for (;;) {
        if ((c = rd_getc()) < 0) return -1;
        if (bol && c == '.') {
            if ((c = rd_getc()) < 0) return -1;
            if (c == '\n') return 0;
            if (c == '\r') {
                if ((c = rd_getc()) < 0) return -1;
                if (c == '\n') return 0;
                if (f) putc('\r', f);
            }
        }
        if (f) putc(c, f);
        bol = (c == '\n');
    }
}

static void session(void)
{
    static unsigned seq;
    char line[MAXLINE], from[MAXLINE], addr[MAXLINE];
    char **rcpt = NULL;
    size_t nrcpt = 0;
    int have_from = 0, n;

    reply("220 sink.postlink.invalid ESMTP postlink-sink");
    for (;;) {
        alarm(300);
        if ((n = rd_line(line, sizeof line)) == -1) break;
        if (n == -2) { reply("500 5.5.2 line too long"); continue; }
        if (!strncasecmp(line, "EHLO", 4) && (!line[4] || line[4] == ' ')) {
            reply("250-sink.postlink.invalid");
            reply("250-PIPELINING");
            reply("250-8BITMIME");
            reply("250-SMTPUTF8");
            reply("250 SIZE 104857600");
        } else if (!strncasecmp(line, "HELO", 4) && (!line[4] || line[4] == ' ')) {
            reply("250 sink.postlink.invalid");
        } else if (!strncasecmp(line, "MAIL ", 5)) {
            if (have_from) { reply("503 5.5.1 nested MAIL command"); continue; }
            if (parse_path(line + 5, "FROM:", from, sizeof from)) { reply("501 5.5.4 syntax: MAIL FROM:<addr>"); continue; }
            have_from = 1;
            reply("250 2.1.0 Ok");
        } else if (!strncasecmp(line, "RCPT ", 5)) {
            int code = 250;
            if (!have_from) { reply("503 5.5.1 need MAIL command"); continue; }
            if (parse_path(line + 5, "TO:", addr, sizeof addr)) { reply("501 5.5.4 syntax: RCPT TO:<addr>"); continue; }
            for (int i = 0; i < nrules; i++)
                if (!strcasecmp(rule_addr[i], addr)) code = rule_code[i];
            if (code / 100 != 2) { reply("%d sink: recipient refused by test rule", code); continue; }
            char **nr = realloc(rcpt, (nrcpt + 1) * sizeof *rcpt);
            if (!nr || !(nr[nrcpt] = strdup(addr))) { rcpt = nr ? nr : rcpt; reply("452 4.3.1 out of memory"); continue; }
            rcpt = nr; nrcpt++;
            reply("250 2.1.5 Ok");
        } else if (!strcasecmp(line, "DATA")) {
            char tmp[4096], fin[4096];
            FILE *f = NULL;
            if (!nrcpt) { reply("503 5.5.1 need RCPT command"); continue; }
            seq++;
            snprintf(tmp, sizeof tmp, "%s/.tmp.%ld.%u", dir, (long)getpid(), seq);
            int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0 || !(f = fdopen(fd, "w"))) {
                if (fd >= 0) close(fd);
                reply("451 4.3.0 cannot create %s: %s", tmp, strerror(errno));
                continue;
            }
            fprintf(f, "X-Envelope-From: <%s>\r\n", from);
            for (size_t i = 0; i < nrcpt; i++) fprintf(f, "X-Envelope-To: <%s>\r\n", rcpt[i]);
            reply("354 End data with <CR><LF>.<CR><LF>");
            alarm(600);
            if (recv_data(f) < 0) { fclose(f); unlink(tmp); break; }
            int bad = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
            bad |= fclose(f) != 0;
            if (!bad && data_code / 100 == 2) {
                snprintf(fin, sizeof fin, "%s/%lld.%ld.%u.eml", dir, (long long)time(NULL), (long)getpid(), seq);
                if (rename(tmp, fin) != 0) bad = 1;
                int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd >= 0) { fsync(dfd); close(dfd); }
            }
            if (bad || data_code / 100 != 2) unlink(tmp);
            if (bad) reply("451 4.3.0 cannot store message");
            else if (data_code / 100 != 2) reply("%d sink: message refused by test rule", data_code);
            else reply("250 2.0.0 Ok: queued as %s", strrchr(fin, '/') + 1);
            goto reset;
        } else if (!strcasecmp(line, "RSET")) {
            reply("250 2.0.0 Ok");
            goto reset;
        } else if (!strncasecmp(line, "NOOP", 4)) {
            reply("250 2.0.0 Ok");
        } else if (!strcasecmp(line, "QUIT")) {
            reply("221 2.0.0 Bye");
            break;
        } else {
            reply("502 5.5.2 command not recognized");
        }
        continue;
    reset:
        for (size_t i = 0; i < nrcpt; i++) free(rcpt[i]);
        free(rcpt);
        rcpt = NULL; nrcpt = 0; have_from = 0;
    }
}

static void on_term(int sig) { (void)sig; stop = 1; }
static void on_chld(int sig) { (void)sig; }

static void usage(void)
{
    fprintf(stderr, "usage: postlink-sink -l HOST:PORT -d DIR [-p PIDFILE] [-r CODE:ADDR]... [-D CODE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *listen_on = NULL, *pidfile = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "l:d:p:r:D:")) != -1) {
        switch (opt) {
        case 'l': listen_on = optarg; break;
        case 'd': dir = optarg; break;
        case 'p': pidfile = optarg; break;
        case 'D': data_code = atoi(optarg); if (data_code < 200 || data_code > 599) usage(); break;
        case 'r': {
            char *colon = strchr(optarg, ':');
            if (!colon || nrules == MAXRULES) usage();
            rule_code[nrules] = atoi(optarg);
            if (rule_code[nrules] < 200 || rule_code[nrules] > 599) usage();
            rule_addr[nrules++] = colon + 1;
            break;
        }
        default: usage();
        }
    }
    if (!listen_on || !dir || optind != argc) usage();

    /* HOST:PORT, HOST may be [v6] */
    char host[256];
    const char *colon = strrchr(listen_on, ':');
    if (!colon || (size_t)(colon - listen_on) >= sizeof host) usage();
    memcpy(host, listen_on, (size_t)(colon - listen_on));
    host[colon - listen_on] = '\0';
    char *h = host;
    if (*h == '[') { h++; h[strcspn(h, "]")] = '\0'; }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV }, *ai;
    int rc = getaddrinfo(h, colon + 1, &hints, &ai);
    if (rc) { fprintf(stderr, "postlink-sink: %s: %s\n", listen_on, gai_strerror(rc)); return 1; }
    int lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), one = 1;
    if (lfd < 0) { perror("postlink-sink: socket"); return 1; }
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, ai->ai_addr, ai->ai_addrlen) || listen(lfd, 64)) {
        fprintf(stderr, "postlink-sink: %s: %s\n", listen_on, strerror(errno));
        return 1;
    }
    freeaddrinfo(ai);

    struct sigaction sa = { .sa_handler = SIG_IGN };
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_chld;
    sigaction(SIGCHLD, &sa, NULL);
    /* Signals are only delivered inside ppoll(): no lost-wakeup race. */
    sigset_t block, waitmask;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM); sigaddset(&block, SIGINT); sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGTERM); sigdelset(&waitmask, SIGINT); sigdelset(&waitmask, SIGCHLD);

    if (pidfile) {
        FILE *pf = fopen(pidfile, "w");
        if (!pf) { perror(pidfile); return 1; }
        fprintf(pf, "%ld\n", (long)getpid());
        fclose(pf);
    }
    pid_t parent = getpid();
    while (!stop) {
        for (pid_t pid; (pid = waitpid(-1, NULL, WNOHANG)) > 0;) forget(pid);
        struct pollfd pfd = { .fd = lfd, .events = POLLIN };
        if (ppoll(&pfd, 1, NULL, &waitmask) <= 0) continue;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        pid_t pid = fork();
        if (pid == 0) {
            /* child: default signals, die with the parent */
            struct sigaction dfl = { .sa_handler = SIG_DFL };
            sigaction(SIGTERM, &dfl, NULL);
            sigaction(SIGINT, &dfl, NULL);
            sigaction(SIGCHLD, &dfl, NULL);
            sigprocmask(SIG_SETMASK, &waitmask, NULL);
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != parent) _exit(0);
            close(lfd);
            cfd = fd;
            session();
            _exit(0);
        }
        if (pid < 0) perror("postlink-sink: fork");
        else if (nkids < sizeof kids / sizeof kids[0]) kids[nkids++] = pid;
        close(fd);
    }
    close(lfd);
    for (size_t i = 0; i < nkids; i++) kill(kids[i], SIGTERM);
    while (nkids > 0) {     /* untracked ones (table full) die by PDEATHSIG */
        pid_t pid = waitpid(-1, NULL, 0);
        if (pid > 0) forget(pid);
        else if (errno != EINTR) break;
    }
    if (pidfile) unlink(pidfile);
    return 0;
}
