/* One RTP packet to many subscribers: protect a copy per SRTP session, send all with sendmmsg(2).
 *
 * libsrtp is not linked here: the caller hands over the address of the srtp_protect that
 * pylibsrtp already loaded, so the sessions it created are protected by the same library.
 * Nothing on the send path raises: a target that cannot be protected or sent is counted in
 * `failed` and the others go out.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sendmmsg(2); Python.h, included first by cffi, defines it too */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* The largest RTP packet taken: one that fills a 1500-byte Ethernet MTU. */
#define FW_MAX_RTP_PACKET_BYTES 1500
/* libsrtp's SRTP_MAX_TRAILER_LEN (SRTP_MAX_TAG_LEN + SRTP_MAX_MKI_LEN): srtp_protect appends
 * the authentication tag (RFC 3711 §3.1) in place, so each copy needs this much room. */
#define FW_SRTP_MAX_TRAILER_LEN (16 + 128)
#define FW_SLOT_BYTES (FW_MAX_RTP_PACKET_BYTES + FW_SRTP_MAX_TRAILER_LEN)
/* sendmmsg(2): the kernel takes at most UIO_MAXIOV messages per call. */
#define FW_UIO_MAXIOV 1024

/* libsrtp 2's srtp_protect(srtp_t ctx, void *rtp_hdr, int *len_ptr); 0 is srtp_err_status_ok. */
typedef int (*fw_srtp_protect_fn)(void *ctx, void *rtp_hdr, int *len_ptr);

typedef struct {
    void *srtp; /* the session's srtp_t */
    struct sockaddr_in addr;
} fw_target;

typedef struct {
    uint64_t sent;   /* datagrams the kernel accepted */
    uint64_t failed; /* targets that got nothing: refused, unprotectable, unsendable */
    int last_errno;  /* of the last failed send, for logs */
    int fd;
    fw_srtp_protect_fn protect;
    size_t capacity; /* targets the scratch below holds */
    unsigned char *slots; /* capacity x FW_SLOT_BYTES: one protected copy per target */
    struct mmsghdr *messages;
    struct iovec *iovecs;
} fw_sender;

fw_sender *fw_sender_new(int fd, fw_srtp_protect_fn protect)
{
    fw_sender *sender = calloc(1, sizeof *sender);
    if (sender != NULL) {
        sender->fd = fd;
        sender->protect = protect;
    }
    return sender;
}

void fw_sender_free(fw_sender *sender)
{
    if (sender == NULL)
        return;
    free(sender->slots);
    free(sender->messages);
    free(sender->iovecs);
    free(sender);
}

/* 0 when `ipv4` is not a dotted-quad IPv4 address. */
int fw_target_set(fw_target *target, void *srtp, const char *ipv4, uint16_t port)
{
    memset(&target->addr, 0, sizeof target->addr);
    target->addr.sin_family = AF_INET;
    target->addr.sin_port = htons(port);
    target->srtp = srtp;
    return inet_pton(AF_INET, ipv4, &target->addr.sin_addr) == 1;
}

/* Grow the scratch to hold `count` targets; 0 when memory is short (the old one is kept). */
static int fw_reserve(fw_sender *sender, size_t count)
{
    if (count <= sender->capacity)
        return 1;
    size_t capacity = sender->capacity * 2 > count ? sender->capacity * 2 : count;
    if (capacity > SIZE_MAX / FW_SLOT_BYTES)
        return 0;
    unsigned char *slots = malloc(capacity * FW_SLOT_BYTES);
    struct mmsghdr *messages = calloc(capacity, sizeof *messages);
    struct iovec *iovecs = calloc(capacity, sizeof *iovecs);
    if (slots == NULL || messages == NULL || iovecs == NULL) {
        free(slots);
        free(messages);
        free(iovecs);
        return 0;
    }
    free(sender->slots);
    free(sender->messages);
    free(sender->iovecs);
    sender->slots = slots;
    sender->messages = messages;
    sender->iovecs = iovecs;
    sender->capacity = capacity;
    return 1;
}

/* Errors that are the socket's, not one message's: the rest of the batch would fail alike. */
static int fw_socket_error(int error)
{
    return error == EAGAIN || error == EWOULDBLOCK || error == ENOBUFS || error == EBADF ||
           error == ENOTSOCK;
}

/* Send the first `ready` messages, UIO_MAXIOV at a time; returns how many the kernel took.
 * On a partial return the message at that index failed, but sendmmsg(2) reports its error
 * only when it is tried again first in the next call. */
static size_t fw_send_messages(fw_sender *sender, size_t ready)
{
    size_t next = 0, accepted = 0;
    while (next < ready) {
        size_t chunk = ready - next < FW_UIO_MAXIOV ? ready - next : FW_UIO_MAXIOV;
        int sent = sendmmsg(sender->fd, sender->messages + next, (unsigned int)chunk,
                            MSG_DONTWAIT);
        if (sent > 0) {
            next += (size_t)sent;
            accepted += (size_t)sent;
            continue;
        }
        if (sent < 0 && errno == EINTR)
            continue;
        sender->last_errno = sent < 0 ? errno : EIO;
        if (sent < 0 && fw_socket_error(errno)) {
            /* UDP: a full socket buffer drops the rest of this packet's copies. */
            sender->failed += ready - next;
            break;
        }
        sender->failed++; /* this message alone: its address; skip it, send on */
        next++;
    }
    sender->sent += accepted;
    return accepted;
}

/* Protect a copy of `packet` for each target and send them; returns datagrams accepted. */
size_t fw_send(fw_sender *sender, const unsigned char *packet, size_t length,
               const fw_target *targets, size_t count)
{
    if (count == 0)
        return 0;
    if (length > FW_MAX_RTP_PACKET_BYTES || !fw_reserve(sender, count)) {
        sender->failed += count;
        return 0;
    }
    size_t ready = 0;
    for (size_t i = 0; i < count; i++) {
        unsigned char *slot = sender->slots + ready * FW_SLOT_BYTES;
        int protected_length = (int)length;
        memcpy(slot, packet, length);
        if (sender->protect(targets[i].srtp, slot, &protected_length) != 0) {
            sender->failed++; /* e.g. a replayed index on a session without allow_repeat_tx */
            continue;
        }
        sender->iovecs[ready].iov_base = slot;
        sender->iovecs[ready].iov_len = (size_t)protected_length;
        struct msghdr *header = &sender->messages[ready].msg_hdr;
        memset(header, 0, sizeof *header);
        header->msg_name = (void *)&targets[i].addr;
        header->msg_namelen = sizeof targets[i].addr;
        header->msg_iov = &sender->iovecs[ready];
        header->msg_iovlen = 1;
        ready++;
    }
    return fw_send_messages(sender, ready);
}
