/* pg.c - the counter in PostgreSQL: one statement per claim, in
 * pipeline mode on a non-blocking libpq connection driven by the worker's
 * loop.
 *
 * Setup, on every connection, as one implicit transaction serialised by an
 * advisory lock (CREATE TABLE IF NOT EXISTS races between sessions): create
 * tally_counters, insert the key's row if missing, prepare the statements.
 * Each claim is the prepared statement followed by its own Sync: a failure
 * aborts only that claim, and its numbers count as granted only once the
 * Sync confirms the implicit transaction committed; a connection lost
 * before that leaves the outcome unknown, and the claim fails (a gap,
 * never a duplicate).
 */
#include <fcntl.h>
#include <libpq-fe.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "counter/drivers.h"
#include "counter/url.h"
#include "base/log.h"
#include "counter/remote.h"
#include "counter/replies.h"

/* Locks the row, raises a value below the process's floor $4 to $6 (at
 * most CAP) unless the row's epoch is newer than the floor's $5
 * (counter/floor.h; a newer $5 is stored), then adds min(k, CAP - value): concurrent claims from
 * any session queue on the row lock and each sees the value the previous one committed. Returns the
 * value before (after any raise) and after, and the value and epoch the row had. */
static const char SQL_CLAIM[] =
    "WITH cur AS (SELECT value, epoch FROM tally_counters WHERE name = $1 FOR UPDATE), "
    "low AS (SELECT value AS had, epoch AS had_epoch, "
    "CASE WHEN $5::bigint >= epoch AND value < $4::bigint "
    "THEN LEAST(GREATEST($6::bigint, $4::bigint), $3::bigint) ELSE value END AS v, "
    "GREATEST(epoch, $5::bigint) AS e FROM cur) "
    "UPDATE tally_counters t "
    "SET value = low.v + LEAST($2::bigint, GREATEST($3::bigint - low.v, 0)), epoch = low.e "
    "FROM low WHERE t.name = $1 RETURNING low.v, t.value, low.had, low.had_epoch";
/* To 0 in the next epoch: the other processes' floors belong to the old. */
static const char SQL_RESET[] =
    "UPDATE tally_counters SET value = 0, epoch = epoch + 1 WHERE name = $1 RETURNING epoch";
static const char SQL_PEEK[] = "SELECT value FROM tally_counters WHERE name = $1";
static const char SQL_LOCK[] = "SELECT pg_advisory_xact_lock(7411007)";
static const char SQL_CREATE[] =
    "CREATE TABLE IF NOT EXISTS tally_counters ("
    "name text PRIMARY KEY, value bigint NOT NULL, epoch bigint NOT NULL DEFAULT 0)";
/* A table made by a tally before the floor has no epoch column yet. */
static const char SQL_MIGRATE[] =
    "ALTER TABLE tally_counters ADD COLUMN IF NOT EXISTS epoch bigint NOT NULL DEFAULT 0";
static const char SQL_INSERT[] =
    "INSERT INTO tally_counters (name, value) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING";

typedef struct pg_counter {
    tally_remote_t r; /* first: the counter is a remote */
    const char *conninfo;
    unsigned attempts; /* connects begun: attempt n begins at host n (url.h) */
    PGconn *conn;
    uv_poll_t *poll;
    int poll_fd; /* the duplicate descriptor the poll handle watches */
    int poll_events;
    bool connecting;
    bool result_seen; /* the oldest op's current query has given its result */
    char cap_s[24];
    char last_error[128];
} pg_counter_t;

static void on_poll_closed(uv_handle_t *h)
{
    free(h);
}

static void poll_close(pg_counter_t *pc)
{
    if (pc->poll) {
        uv_close((uv_handle_t *)pc->poll, on_poll_closed);
        pc->poll = NULL;
        pc->poll_events = 0;
        /* uv_close() has stopped watching: the duplicate can go now */
        close(pc->poll_fd);
        pc->poll_fd = -1;
    }
}

static void on_poll(uv_poll_t *h, int status, int events);

/* Watches the connection's socket. While connecting the socket may change
 * (and a new one may reuse the old number) between PQconnectPoll() calls,
 * so a fresh poll handle is made for every step. The handle watches a
 * duplicate of libpq's descriptor: libpq closes its own when the server
 * goes away, from inside PQconsumeInput(), while the poll handle is still
 * active; the duplicate stays valid (and its number taken) until
 * poll_close(), so the loop never watches a closed or reused number. */
static int watch(pg_counter_t *pc, int events, bool fresh)
{
    if (fresh)
        poll_close(pc);
    if (pc->poll == NULL) {
        int sock = PQsocket(pc->conn);
        int fd = sock >= 0 ? fcntl(sock, F_DUPFD_CLOEXEC, 0) : -1;
        if (fd < 0)
            return -1;
        pc->poll = malloc(sizeof *pc->poll);
        if (pc->poll == NULL || uv_poll_init_socket(pc->r.base.loop, pc->poll, fd) != 0) {
            free(pc->poll);
            pc->poll = NULL;
            close(fd);
            return -1;
        }
        pc->poll->data = pc;
        pc->poll_fd = fd;
    }
    if (events != pc->poll_events) {
        pc->poll_events = events;
        if (uv_poll_start(pc->poll, events, on_poll) != 0)
            return -1;
    }
    return 0;
}

static void pg_drop(tally_remote_t *r)
{
    pg_counter_t *pc = (pg_counter_t *)r;
    poll_close(pc); /* stop watching before libpq closes the socket */
    if (pc->conn) {
        PQfinish(pc->conn);
        pc->conn = NULL;
    }
    pc->connecting = false;
    pc->result_seen = false;
}

/* libpq's messages end in a newline; logs want one line. */
static const char *pg_error(pg_counter_t *pc, char *buf, size_t len)
{
    snprintf(buf, len, "%s", pc->conn ? PQerrorMessage(pc->conn) : "no connection");
    char *o = buf;
    for (char *p = buf; *p; p++) {
        char c = (*p == '\n' || *p == '\r' || *p == '\t') ? ' ' : *p;
        if (c == ' ' && (o == buf || o[-1] == ' '))
            continue; /* one line, single spaces */
        *o++ = c;
    }
    while (o > buf && o[-1] == ' ')
        o--;
    *o = '\0';
    return buf[0] ? buf : "unknown error";
}

static void fail_now(pg_counter_t *pc, const char *reason)
{
    pg_drop(&pc->r);
    tally_remote_down(&pc->r, reason);
}

static void flush(pg_counter_t *pc)
{
    int rc = PQflush(pc->conn);
    char err[200];
    if (rc < 0) {
        tally_remote_fail_soon(&pc->r, pg_error(pc, err, sizeof err));
        return;
    }
    /* Keep reading while writing: the server may block on its own output. */
    if (watch(pc, rc == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE, false) != 0)
        tally_remote_fail_soon(&pc->r, "cannot watch the socket");
}

static int send_setup(pg_counter_t *pc)
{
    PGconn *c = pc->conn;
    const char *key[1] = {pc->r.key};
    tally_op_t *op = tally_remote_op_new(&pc->r, TALLY_OP_SETUP);
    if (op == NULL)
        return -1;
    op->ok = true;
    op->pending = 7;
    if (!PQsendQueryParams(c, SQL_LOCK, 0, NULL, NULL, NULL, NULL, 0) ||
        !PQsendQueryParams(c, SQL_CREATE, 0, NULL, NULL, NULL, NULL, 0) ||
        !PQsendQueryParams(c, SQL_MIGRATE, 0, NULL, NULL, NULL, NULL, 0) ||
        !PQsendQueryParams(c, SQL_INSERT, 1, NULL, key, NULL, NULL, 0) ||
        !PQsendPrepare(c, "tally_claim", SQL_CLAIM, 6, NULL) ||
        !PQsendPrepare(c, "tally_reset", SQL_RESET, 1, NULL) ||
        !PQsendPrepare(c, "tally_peek", SQL_PEEK, 1, NULL) || !PQpipelineSync(c))
        return -1;
    flush(pc);
    return 0;
}

static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "relation already exists, skipping" and the like */
}

static void connect_step(pg_counter_t *pc)
{
    char err[200];
    switch (PQconnectPoll(pc->conn)) {
    case PGRES_POLLING_READING:
        if (watch(pc, UV_READABLE, true) != 0)
            fail_now(pc, "cannot watch the socket");
        return;
    case PGRES_POLLING_WRITING:
        if (watch(pc, UV_WRITABLE, true) != 0)
            fail_now(pc, "cannot watch the socket");
        return;
    case PGRES_POLLING_OK:
        pc->connecting = false;
        PQsetNoticeProcessor(pc->conn, quiet_notice, NULL);
        if (PQsetnonblocking(pc->conn, 1) != 0 || !PQenterPipelineMode(pc->conn) ||
            watch(pc, UV_READABLE, true) != 0 || send_setup(pc) != 0)
            fail_now(pc, pg_error(pc, err, sizeof err));
        return;
    default:
        fail_now(pc, pg_error(pc, err, sizeof err));
        return;
    }
}

/* Marks op failed and logs why, once per distinct message. */
static void note_error(pg_counter_t *pc, tally_op_t *op, const char *one)
{
    bool first = op->ok;
    op->ok = false;
    if (op->kind == TALLY_OP_SETUP) {
        if (first) {
            char reason[200];
            snprintf(reason, sizeof reason, "setup failed: %s", one);
            tally_remote_fail_soon(&pc->r, reason);
        }
        return;
    }
    if (strcmp(pc->last_error, one) != 0) {
        snprintf(pc->last_error, sizeof pc->last_error, "%s", one);
        tally_logf(TALLY_LOG_ERROR, "backend", "worker-%u: postgres: statement failed: %s",
                   pc->r.worker_id, one);
    }
}

static void record_error(pg_counter_t *pc, tally_op_t *op, PGresult *res)
{
    const char *msg = PQresultErrorMessage(res);
    char one[128];
    snprintf(one, sizeof one, "%s", msg && *msg ? msg : PQresStatus(PQresultStatus(res)));
    for (char *p = one; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    note_error(pc, op, one);
}

/* The result of the oldest op's current query. */
static void take_result(pg_counter_t *pc, tally_op_t *op, PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    if (op->pending > 0)
        op->pending--;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        record_error(pc, op, res);
        return;
    }
    if (op->kind == TALLY_OP_CLAIM) {
        if (PQntuples(res) != 1 || PQnfields(res) != 4) {
            /* the key's row is gone: the next connection's setup makes it */
            op->ok = false;
            tally_remote_fail_soon(&pc->r, "counter row missing");
            return;
        }
        const char *f[4] = {PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
                            PQgetvalue(res, 0, 3)};
        tally_claim_answer_t an;
        op->ok = tally_pg_claim_row(f, op->k, &an);
        if (op->ok) {
            op->value = an.before;
            op->granted = an.granted;
            op->had = an.had;
            op->epoch = an.epoch;
        }
        if (!op->ok)
            note_error(pc, op, "unexpected row from the claim statement");
    } else if (op->kind == TALLY_OP_PEEK) {
        /* No row: someone deleted it. Count that as 0, so the halt cache
         * lets the next claim through; it finds the row missing and the
         * reconnect's setup inserts it again. */
        op->value = 0;
        op->ok = PQntuples(res) == 0 || (PQntuples(res) == 1 && PQnfields(res) == 1 &&
                                         tally_parse_count(PQgetvalue(res, 0, 0), &op->value));
    } else if (op->kind == TALLY_OP_RESET) {
        /* No row: the reset fails (503); the next claim's reconnect makes it. */
        op->ok = PQntuples(res) == 1 && PQnfields(res) == 1 &&
                 tally_parse_count(PQgetvalue(res, 0, 0), &op->epoch) && op->epoch >= 1;
        if (!op->ok)
            tally_remote_fail_soon(&pc->r, "counter row missing");
    }
}

static void read_results(pg_counter_t *pc)
{
    char err[200];
    if (!PQconsumeInput(pc->conn)) {
        tally_remote_fail_soon(&pc->r, pg_error(pc, err, sizeof err));
        return;
    }
    while (pc->conn && !PQisBusy(pc->conn)) {
        PGresult *res = PQgetResult(pc->conn);
        tally_op_t *op = tally_remote_oldest(&pc->r);
        if (res == NULL) {
            /* ends one query's results; or there is nothing more to read */
            if (!pc->result_seen)
                break;
            pc->result_seen = false;
            continue;
        }
        ExecStatusType st = PQresultStatus(res);
        if (op == NULL) {
            PQclear(res);
            tally_remote_fail_soon(&pc->r, "a result nobody asked for");
            return;
        }
        if (st == PGRES_PIPELINE_SYNC) {
            /* the implicit transaction is over: the outcome is known */
            PQclear(res);
            bool setup = op->kind == TALLY_OP_SETUP;
            bool ok = op->ok;
            tally_remote_finish(&pc->r, op);
            if (setup && ok)
                tally_remote_up(&pc->r);
            continue;
        }
        pc->result_seen = true;
        take_result(pc, op, res);
        PQclear(res);
    }
    if (pc->conn && PQstatus(pc->conn) == CONNECTION_BAD)
        tally_remote_fail_soon(&pc->r, pg_error(pc, err, sizeof err));
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    pg_counter_t *pc = h->data;
    if (pc->poll != h || pc->conn == NULL)
        return;
    if (pc->connecting) {
        connect_step(pc);
        return;
    }
    if (status < 0)
        events = UV_READABLE; /* libpq will see the error on the socket */
    if (events & UV_WRITABLE)
        flush(pc);
    if (pc->conn && (events & UV_READABLE))
        read_results(pc);
}

static void pg_connect(tally_remote_t *r)
{
    pg_counter_t *pc = (pg_counter_t *)r;
    char err[200];
    tally_pg_params_t params;
    if (tally_pg_params(pc->conninfo, pc->attempts++, &params) != 0) {
        tally_remote_down(r, "cannot read the connection string (out of memory?)");
        return;
    }
    pc->conn = PQconnectStartParams(params.keywords, params.values, 0);
    tally_pg_params_free(&params);
    if (pc->conn == NULL) {
        tally_remote_down(r, "out of memory");
        return;
    }
    if (PQstatus(pc->conn) == CONNECTION_BAD) {
        fail_now(pc, pg_error(pc, err, sizeof err));
        return;
    }
    pc->connecting = true;
    pc->result_seen = false;
    /* As if PQconnectPoll() had asked for writability. */
    if (watch(pc, UV_WRITABLE, true) != 0)
        fail_now(pc, "cannot watch the socket");
}

static int pg_send(tally_remote_t *r, tally_op_t *op)
{
    pg_counter_t *pc = (pg_counter_t *)r;
    if (pc->conn == NULL || pc->connecting)
        return -1;
    char k_s[16];
    snprintf(k_s, sizeof k_s, "%u", op->k);
    char floor_s[24], epoch_s[24], to_s[24];
    snprintf(floor_s, sizeof floor_s, "%lld", (long long)op->floor);
    snprintf(epoch_s, sizeof epoch_s, "%lld", (long long)op->floor_epoch);
    snprintf(to_s, sizeof to_s, "%lld", (long long)op->raise_to);
    const char *params[6] = {r->key, k_s, pc->cap_s, floor_s, epoch_s, to_s};
    const char *stmt;
    int n = 1;
    switch (op->kind) {
    case TALLY_OP_CLAIM:
        stmt = "tally_claim";
        n = 6;
        break;
    case TALLY_OP_RESET:
        stmt = "tally_reset";
        break;
    case TALLY_OP_PEEK:
        stmt = "tally_peek";
        break;
    default:
        return -1;
    }
    op->ok = true;
    op->pending = 1;
    if (!PQsendQueryPrepared(pc->conn, stmt, n, params, NULL, NULL, 0) || !PQpipelineSync(pc->conn))
        return -1;
    flush(pc);
    return 0;
}

static void pg_destroy(tally_remote_t *r, void (*done)(tally_remote_t *r))
{
    done(r);
}

static const tally_remote_driver_t pg_driver = {
    .name = "postgres",
    .connect = pg_connect,
    .drop = pg_drop,
    .send = pg_send,
    .destroy = pg_destroy,
};

int tally_counter_pg_open(uv_loop_t *loop, const tally_counter_params_t *p, tally_counter_t **out,
                          char *why, size_t whylen)
{
    pg_counter_t *pc = calloc(1, sizeof *pc);
    if (pc == NULL) {
        snprintf(why, whylen, "not enough memory for the postgres counter");
        return -ENOMEM;
    }
    pc->conninfo = p->url;
    pc->poll_fd = -1;
    snprintf(pc->cap_s, sizeof pc->cap_s, "%lld", (long long)p->cap);
    pc->r.base.ops = &tally_remote_counter_ops;
    tally_pg_url_display(p->url, pc->r.where, sizeof pc->r.where);
    tally_remote_start(&pc->r, &pg_driver, pc, loop, p);
    *out = &pc->r.base;
    return 0;
}
