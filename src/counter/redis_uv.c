/* redis_uv.c - see redis_uv.h. */
#include "counter/redis_uv.h"

#include <errno.h>
#include <stdlib.h>

typedef struct glue {
    uv_poll_t poll;
    redisAsyncContext *ac; /* NULL once hiredis called cleanup */
    int events;
} glue_t;

static void on_poll(uv_poll_t *h, int status, int events)
{
    glue_t *g = h->data;
    if (g->ac == NULL)
        return;
    redisAsyncContext *ac = g->ac;
    if (status < 0) {
        /* libuv stopped the poll; let hiredis find out what happened. */
        g->events = 0;
        if (!(ac->c.flags & REDIS_CONNECTED))
            redisAsyncHandleWrite(ac);
        else
            redisAsyncHandleRead(ac);
        return;
    }
    if (events & UV_READABLE)
        redisAsyncHandleRead(ac);
    /* the read may have freed the context (cleanup sets g->ac = NULL) */
    if (g->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(g->ac);
}

static void update(glue_t *g, int events)
{
    if (events == g->events)
        return;
    g->events = events;
    if (events)
        uv_poll_start(&g->poll, events, on_poll);
    else
        uv_poll_stop(&g->poll);
}

static void add_read(void *p)
{
    glue_t *g = p;
    update(g, g->events | UV_READABLE);
}

static void del_read(void *p)
{
    glue_t *g = p;
    update(g, g->events & ~UV_READABLE);
}

static void add_write(void *p)
{
    glue_t *g = p;
    update(g, g->events | UV_WRITABLE);
}

static void del_write(void *p)
{
    glue_t *g = p;
    update(g, g->events & ~UV_WRITABLE);
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void cleanup(void *p)
{
    glue_t *g = p;
    g->ac = NULL;
    uv_close((uv_handle_t *)&g->poll, on_closed);
}

int tally_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (ac->ev.data != NULL)
        return -EEXIST;
    glue_t *g = calloc(1, sizeof *g);
    if (g == NULL)
        return -ENOMEM;
    int rc = uv_poll_init_socket(loop, &g->poll, ac->c.fd);
    if (rc != 0) {
        free(g);
        return rc;
    }
    g->poll.data = g;
    g->ac = ac;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    ac->ev.data = g;
    return 0;
}
