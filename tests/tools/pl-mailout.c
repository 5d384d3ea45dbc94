/* pl-mailout.c -- test and debugging front end to mailout.h: send a file
 * over SMTP, or add/remove IMAP flags by Message-ID, as postlink-syncd does.
 *
 *   pl-mailout smtp URL FROM RCPT[,RCPT..] FILE          ("-" = stdin)
 *   pl-mailout imap URL USER PASSWORD MSGID +FLAGS|-FLAGS "FLAG LIST"
 *   pl-mailout tokens URL USER PASSWORD FIELD "FLAG LIST"|expunge TOKEN...
 *       (the messages whose FIELD is one of the TOKENs, in one session, as
 *       postlink-mirrord withdraws copies)
 *
 * Prints "ok" / "matched N" on stdout, or the error on stderr.  Exit 0, 75
 * (EX_TEMPFAIL) for a temporary failure, 69 (EX_UNAVAILABLE) for a
 * permanent one, 64 for usage errors, 66 for an unreadable FILE.
 * PL_MAILOUT_HELO sets the HELO name (default "localhost"),
 * PL_MAILOUT_TIMEOUT the timeout in seconds (default 20). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "mailout.h"
#include "strutil.h"

static int usage(void)
{
    fprintf(stderr, "usage: pl-mailout smtp URL FROM RCPT[,RCPT..] FILE\n"
                    "       pl-mailout imap URL USER PASSWORD MSGID +FLAGS|-FLAGS \"FLAG LIST\"\n"
                    "       pl-mailout tokens URL USER PASSWORD FIELD \"FLAG LIST\"|expunge TOKEN...\n");
    return EX_USAGE;
}

static int exit_code(int rc, const char *err)
{
    if (rc == PL_OUT_OK)
        return 0;
    fprintf(stderr, "pl-mailout: %s: %s\n", rc == PL_OUT_TEMP ? "temporary failure" : "refused",
            err);
    return rc == PL_OUT_TEMP ? EX_TEMPFAIL : EX_UNAVAILABLE;
}

static int read_all(const char *path, struct pl_strbuf *b)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char buf[65536];
    size_t n;

    if (f == NULL)
        return -1;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        pl_strbuf_addn(b, buf, n);
    if (ferror(f)) {
        if (f != stdin)
            fclose(f);
        return -1;
    }
    if (f != stdin)
        fclose(f);
    return 0;
}

static unsigned timeout_s(void)
{
    const char *t = getenv("PL_MAILOUT_TIMEOUT");
    return t && *t ? (unsigned)strtoul(t, NULL, 10) : 20;
}

static int cmd_smtp(char **argv)
{
    struct pl_strvec rcpts = {0};
    struct pl_strbuf msg = {0};
    const char *helo = getenv("PL_MAILOUT_HELO");
    char err[1024], *list = pl_xstrdup(argv[2]), *save = NULL;
    int rc;

    for (char *r = strtok_r(list, ",", &save); r; r = strtok_r(NULL, ",", &save))
        pl_strvec_add(&rcpts, r);
    free(list);
    if (read_all(argv[3], &msg) != 0) {
        perror(argv[3]);
        pl_strvec_free(&rcpts);
        return EX_NOINPUT;
    }
    rc = pl_smtp_send(argv[0], helo ? helo : "localhost", argv[1],
                      (const char *const *)rcpts.v, rcpts.n, msg.s ? msg.s : "", msg.len,
                      timeout_s(), err, sizeof(err));
    if (rc == PL_OUT_OK)
        printf("ok\n");
    pl_strvec_free(&rcpts);
    pl_strbuf_free(&msg);
    return exit_code(rc, err);
}

static int cmd_imap(char **argv)
{
    struct pl_imap_login l = {argv[0], argv[1], argv[2]};
    char err[1024];
    int matched = 0, rc, add;

    if (strcmp(argv[4], "+FLAGS") == 0)
        add = 1;
    else if (strcmp(argv[4], "-FLAGS") == 0)
        add = 0;
    else
        return usage();
    rc = pl_imap_set_flags(&l, argv[3], argv[5], add, timeout_s(), &matched, err, sizeof(err));
    if (rc == PL_OUT_OK)
        printf("matched %d\n", matched);
    return exit_code(rc, err);
}

static int cmd_tokens(int argc, char **argv)
{
    struct pl_imap_login l = {argv[0], argv[1], argv[2]};
    char err[1024];
    int matched = 0, expunge = strcmp(argv[4], "expunge") == 0;
    int rc = pl_imap_by_tokens(&l, argv[3], (const char *const *)argv + 5, (size_t)(argc - 5),
                               expunge ? "\\Deleted" : argv[4], expunge, timeout_s(), &matched,
                               err, sizeof(err));
    if (rc == PL_OUT_OK)
        printf("matched %d\n", matched);
    return exit_code(rc, err);
}

int main(int argc, char **argv)
{
    if (argc >= 8 && strcmp(argv[1], "tokens") == 0)
        return cmd_tokens(argc - 2, argv + 2);
    if (argc == 6 && strcmp(argv[1], "smtp") == 0)
        return cmd_smtp(argv + 2);
    if (argc == 8 && strcmp(argv[1], "imap") == 0)
        return cmd_imap(argv + 2);
    return usage();
}
