/* milter_proto.h -- the milter wire format (Sendmail 8 milter protocol
 * version 6, as Postfix speaks it): a packet is a 4-byte length in network
 * order, a command byte and its data.  Splitting a byte stream into
 * packets, decoding each command's data, and encoding replies.  No I/O:
 * milter_session.c drives it and fuzz/fuzz_milter.c feeds it anything. */
#ifndef PL_MILTER_PROTO_H
#define PL_MILTER_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PL_MPROTO_MAX_PACKET (2u * 1024 * 1024)   /* larger: the peer is not Postfix */

/* A growing byte buffer. */
struct pl_mbuf {
    unsigned char *p;
    size_t len, cap;
};
void pl_mbuf_add(struct pl_mbuf *b, const void *data, size_t len);
void pl_mbuf_consume(struct pl_mbuf *b, size_t n);
void pl_mbuf_free(struct pl_mbuf *b);

/* The next packet in buf[0..len): 1 with cmd, data, dlen and used set,
 * 0 if it is not all there yet, -1 if it is malformed (length 0 or over
 * PL_MPROTO_MAX_PACKET). */
int pl_mproto_next(const unsigned char *buf, size_t len, unsigned char *cmd,
                   const unsigned char **data, size_t *dlen, size_t *used);

/* NUL-terminated strings packed in data (each must end in NUL): *argv is
 * one allocation (free(*argv)) of up to max pointers, NULL-terminated, and
 * the strings.  Returns the count, or -1 (and *argv NULL) if the data does
 * not end in NUL or holds more than max strings. */
int pl_mproto_strings(const unsigned char *data, size_t len, char ***argv, size_t max);

/* SMFIC_OPTNEG data: version, actions, protocol flags (12 bytes). */
int pl_mproto_optneg(const unsigned char *data, size_t len, uint32_t *version,
                     uint32_t *actions, uint32_t *proto);

/* SMFIC_CONNECT data: host name, and the client address in *ss (family
 * AF_UNSPEC when unknown or unix).  *host points into a copy the caller
 * frees (*store).  0 or -1. */
int pl_mproto_connect(const unsigned char *data, size_t len, char **store, const char **host,
                      struct sockaddr_storage *ss);

/* Encode one packet into out. */
void pl_mproto_put(struct pl_mbuf *out, unsigned char cmd, const void *data, size_t len);
/* A packet whose data is the NUL-terminated strings given (NULL ends the list). */
void pl_mproto_put_strings(struct pl_mbuf *out, unsigned char cmd, const char *s1, ...);
/* SMFIR_CHGHEADER/SMFIR_INSHEADER: index, name, value. */
void pl_mproto_put_indexed(struct pl_mbuf *out, unsigned char cmd, uint32_t index,
                           const char *name, const char *value);

#endif
