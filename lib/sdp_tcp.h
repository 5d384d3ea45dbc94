/* sdp_tcp.h -- the SDP codec of postlink-sipd's SMTP-over-TCP channel
 * (RFC 4566 SDP, RFC 4145 TCP media) and the POSTLINK token line the
 * connecting side sends first.  Pure codec: no sockets, no logging.
 *
 * The media line both sides exchange:
 *     m=application <port> TCP smtp
 *     c=IN IP4 <addr>                  (or IN IP6)
 *     a=setup:actpass|active|passive
 *     a=connection:new
 *     a=postlink-token:<64 lowercase hex>
 * The offerer says actpass and listens; the answerer picks active or
 * passive (pl_sdp_answer_setup).  The active side opens the TCP
 * connection, puts port 9 in its m= line (RFC 4145) and first sends
 *     POSTLINK <token of the passive side>\r\n
 * (pl_sdp_token_line); the passive side closes the connection unless that
 * line is exactly its own token (pl_sdp_token_line_check). */
#ifndef PL_SDP_TCP_H
#define PL_SDP_TCP_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define PL_SDP_MAX        16384   /* longest SDP body pl_sdp_parse accepts */
#define PL_SDP_LINE_MAX   1000    /* longest line, without its CR LF */
#define PL_SDP_TOKEN_LEN  64      /* a token: 64 lowercase hex digits */
#define PL_SDP_DISCARD_PORT 9     /* the m= port of an active side */
/* "POSTLINK " + token + CR LF: a reader needs no more than this. */
#define PL_SDP_TOKEN_LINE_MAX (9 + PL_SDP_TOKEN_LEN + 2)

enum pl_sdp_setup {
    PL_SETUP_NONE,        /* no a=setup line */
    PL_SETUP_ACTIVE,
    PL_SETUP_PASSIVE,
    PL_SETUP_ACTPASS,
    PL_SETUP_HOLDCONN
};

/* One side's TCP media.  pl_sdp_parse fills every field; pl_sdp_build reads
 * all but connection_new (it always writes a=connection:new). */
struct pl_sdp_tcp {
    char addr[INET6_ADDRSTRLEN];  /* numeric, canonical (inet_ntop) form */
    int family;                   /* AF_INET or AF_INET6 */
    unsigned port;                /* 1-65535; 9 from an active side */
    enum pl_sdp_setup setup;
    int connection_new;           /* 1: a=connection:new; 0: existing or absent */
    char token[PL_SDP_TOKEN_LEN + 1]; /* "" when the SDP has none */
    char fmt[33];                 /* "smtp" (build: "" means "smtp") */
};

/* Build a complete SDP body, CRLF line ends:
 *     v=0
 *     o=postlink <sess_id> <sess_version> IN IP4|IP6 <addr>
 *     s=postlink
 *     c=IN IP4|IP6 <addr>
 *     t=0 0
 *     m=application <port> TCP <fmt>
 *     a=setup:<setup>
 *     a=connection:new
 *     a=postlink-token:<token>
 * m must have a numeric addr of its family, a port 1-65535, a setup other
 * than PL_SETUP_NONE and a well-formed token.  Returns the length written
 * (NUL-terminated), or -1 if m is not valid or out[outlen] is too small. */
int pl_sdp_build(char *out, size_t outlen, uint64_t sess_id, uint64_t sess_version,
                 const struct pl_sdp_tcp *m);

/* Parse an SDP body (sdp[0..len), need not be NUL-terminated) and fill *m
 * from the first m= line that reads "application <port> TCP ... smtp ..."
 * (media, proto and fmt in any letter case: sofia-sip lowercases TCP):
 * - c= from that media section, else the session level; it must be
 *   "IN IP4|IP6 <numeric literal of that family>", not unspecified nor
 *   multicast;
 * - a=setup and a=connection from that media section, else the session
 *   level; a=postlink-token from that media section only (absent: token
 *   is "" and the caller refuses the call); other attributes, other media
 *   sections and other line types are ignored;
 * - port 1-65535 (port 0 means the peer rejected the media: an error; 9,
 *   the port an active side names, is returned as it is);
 * - the body starts with v=0; every line ends in CRLF or LF (the last one
 *   too: a body without it is taken as truncated); empty lines are
 *   skipped; a line over PL_SDP_LINE_MAX bytes, a body over PL_SDP_MAX
 *   bytes, a NUL byte, an unknown a=setup or a=connection value, a second
 *   c=, a=setup, a=connection or a=postlink-token at the same level, or a
 *   malformed token are errors.
 * Returns 0, or -1 with *m zeroed and the reason in err (may be NULL). */
int pl_sdp_parse(const char *sdp, size_t len, struct pl_sdp_tcp *m, char *err, size_t errlen);

/* The answerer's role (RFC 4145 section 4.1) for the offer's a=setup:
 * actpass -> preferred if that is active or passive, passive when
 * preferred is PL_SETUP_NONE; active, or no a=setup (PL_SETUP_NONE, the
 * RFC default for an offer), -> passive; passive -> active.  Returns 0, or
 * -1 for a holdconn offer or a preferred role other than none, active or
 * passive. */
int pl_sdp_answer_setup(enum pl_sdp_setup offer, enum pl_sdp_setup preferred,
                        enum pl_sdp_setup *answer);

/* The offerer's role once the answer is in: answer active -> passive;
 * answer passive or no a=setup (the RFC default for an answer is passive)
 * -> active.  Returns 0, or -1 for an actpass or holdconn answer. */
int pl_sdp_offer_setup(enum pl_sdp_setup answer, enum pl_sdp_setup *mine);

/* 1 if my role is active (I open the TCP connection), 0 if passive, -1 for
 * any other value. */
int pl_sdp_i_connect(enum pl_sdp_setup mine);

/* The a=setup value of s ("active", ...), or NULL for PL_SETUP_NONE. */
const char *pl_sdp_setup_name(enum pl_sdp_setup s);

/* A new random token (getrandom, 32 bytes as 64 lowercase hex), NUL-
 * terminated.  Returns 0, or -1 if no random bytes could be had. */
int pl_sdp_token_new(char out[PL_SDP_TOKEN_LEN + 1]);
/* 1 if token is exactly 64 lowercase hex digits. */
int pl_sdp_token_ok(const char *token);
/* 1 if a and b are both tokens of 64 characters and equal; the time taken
 * does not depend on where they differ. */
int pl_sdp_token_eq(const char *a, const char *b);

/* Write "POSTLINK <token>\r\n" (NUL-terminated).  Returns its length
 * (PL_SDP_TOKEN_LINE_MAX), or -1 if token is not well-formed or out is too
 * small. */
int pl_sdp_token_line(char *out, size_t outlen, const char *token);
/* 1 if line[0..len) is exactly "POSTLINK <token>" followed by CRLF or LF,
 * else 0 (also for a malformed token).  Constant time in the token. */
int pl_sdp_token_line_check(const char *line, size_t len, const char *token);

#endif
