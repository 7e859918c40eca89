/* conn.h - one client connection: read, parse, queue answers in request
 * order, write them in one go.
 *
 * Lifetime: tally_conn_accept() creates it; it frees itself in its close
 * callback, and never before every claim it queued has been settled (a
 * claim in flight points at its slot). Each request takes a slot of a small
 * ring; answers leave in ring order, so pipelined requests are answered in
 * order even when a later one is ready first. When the ring is full the
 * parser pauses, the unparsed rest of the input is kept aside, and reading
 * stops until slots free up: memory per connection stays bounded.
 *
 * Writes: the ready answers at the head of the ring are serialised into the
 * worker's output buffer and written with one uv_try_write(); only when
 * the socket cannot take them all is the rest copied into a write request
 * of the connection's own, and reading waits until it completes.
 */
#ifndef TALLY_CONN_H
#define TALLY_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "app/batch.h"
#include "http/parser.h"
#include "base/list.h"

#define TALLY_CONN_SLOTS 16
/* How long a half-closed connection may keep sending before it is closed. */
#define TALLY_LINGER_MS 2000

struct tally_worker;

typedef struct tally_slot {
    tally_claim_t claim;
    struct tally_conn *conn;
    const char *detail; /* error text (static) */
    uint64_t t0_us;     /* when the request was parsed (worker's read_us) */
    int64_t number;
    uint16_t status;
    uint8_t kind;
    uint8_t flags; /* TALLY_RESP_* */
    uint8_t route;
    bool ready;
} tally_slot_t;

enum { TALLY_TLIST_NONE = 0, TALLY_TLIST_HEADER, TALLY_TLIST_IDLE, TALLY_TLIST_LINGER };

typedef struct tally_conn {
    uv_tcp_t tcp;
    struct tally_worker *w;
    tally_http_t http;
    struct tally_conn *dirty_next;
    tally_list_t all;   /* worker's list of every connection */
    tally_list_t tnode; /* in one of the worker's deadline lists, or self-linked */
    uint64_t deadline;
    uint32_t deadline_msg; /* the request (http.messages) the header deadline is for */
    struct conn_write *wr; /* write in flight (slow path) or NULL */
    char *saved;           /* unparsed input kept while the ring is full */
    uint32_t saved_len, saved_off;
    uint16_t pending; /* claims and resets not settled yet */
    uint8_t head, count;
    uint8_t tlist;
    bool dirty;
    bool reading;
    bool eof;         /* the client sent FIN */
    bool close_after; /* answer what is queued, then close */
    bool unread;      /* input was left unread: close with a linger */
    bool lingering;
    bool closed;
    tally_slot_t slots[TALLY_CONN_SLOTS];
} tally_conn_t;

/* Listener callback body: accepts one connection on w. */
void tally_conn_accept(struct tally_worker *w, uv_stream_t *listener);

/* Serves fd, a socket accepted outside libuv (the listener's queue drained
 * at shutdown); closes it on failure. */
void tally_conn_adopt(struct tally_worker *w, int fd);

/* Writes what is ready, resumes a paused parser, closes when done, and
 * files the connection under the right deadline. The worker calls it for
 * every dirty connection once per loop iteration. */
void tally_conn_pump(tally_conn_t *c);

/* The worker is shutting down: finish what the connection has been asked,
 * then close it. */
void tally_conn_drain(tally_conn_t *c);

/* The deadline of the list the connection is in has passed. */
void tally_conn_expire(tally_conn_t *c);

/* Closes now (idempotent); the connection is freed once nothing points at
 * it any more. */
void tally_conn_close(tally_conn_t *c);

/* Frees the connections w keeps for reuse (when its loop ends). */
void tally_conn_free_cache(struct tally_worker *w);

/* The request callback tally_http_config_init() is given. */
int tally_conn_on_request(void *owner, const tally_http_request_t *req);

#endif
