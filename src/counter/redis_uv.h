/* redis_uv.h - hiredis' async API driven by a libuv loop.
 *
 * tally's own glue rather than hiredis 0.14's bundled adapters/libuv.h:
 * that one returns early when libuv reports a poll error, so a refused or
 * reset connection is never noticed by hiredis and its callbacks never
 * run. Here a poll error is handed to hiredis as a read (or, while
 * connecting, a write) event, so it reads the socket error and fails the
 * connection the normal way.
 *
 * The poll handle is allocated on its own and freed in its close callback,
 * which may run after hiredis has freed the context.
 */
#ifndef TALLY_REDIS_UV_H
#define TALLY_REDIS_UV_H

#include <hiredis/async.h>
#include <uv.h>

/* Attaches ac to loop. Returns 0, or (ac untouched) -EEXIST when ac has an
 * event library already, -ENOMEM, or libuv's (negative errno) code. */
int tally_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
