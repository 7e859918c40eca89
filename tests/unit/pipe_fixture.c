/* pipe_fixture.c - the harness of pipe_fixture.h: fixtures, the pump as
 * worker.c/conn.c run it, and the strict HTTP/1.1 reader. */
#include "pipe_fixture.h"

#include "json_check.h"

const cfg_t DEF = {100, NULL, 8192}, CAP2 = {2, NULL, 8192}, TOKEN = {100, "s3cret", 8192},
            SMALL = {100, NULL, 256};
fx_t *cur;
char readbuf[64 * 1024];
answer_t ans[64];

static uint64_t fake_clock(void)
{
    return cur->now_us += 10;
}

static void on_wake(tally_pipe_t *p)
{
    assert_true(p == &cur->pipe && p->owner == cur);
    cur->wakes++;
    cur->dirty = true;
}

int setup(void **state)
{
    const cfg_t *cfg = *state;
    fx_t *f = cur = calloc(1, sizeof *f);
    char why[128];
    if (f == NULL || uv_loop_init(&f->loop) != 0)
        return -1;
    f->cfg = cfg;
    f->shared = (tally_app_shared_t){.cap = cfg->cap,
                                     .admin = cfg->token != NULL,
                                     .backend = "memory",
                                     .napps = 1,
                                     .apps = &f->app,
                                     .server = &f->server};
    tally_counter_params_t cp = {.cap = cfg->cap, .worker_id = 1, .shared = &f->memory};
    if (tally_app_init(&f->app, &f->shared, 1, &f->loop, "memory", &cp, why, sizeof why) != 0 ||
        tally_pipe_env_init(&f->env, cfg->max_header, 1024, cfg->token, &tally_routes_hooks,
                            &f->app) != 0)
        return -1;
    f->env.clock_us = fake_clock;
    f->env.wake = on_wake;
    tally_http_date(f->env.resp.date, time(NULL));
    tally_pipe_init(&f->pipe, &f->env, f);
    *state = f;
    return 0;
}

int teardown(void **state)
{
    fx_t *f = *state;
    tally_pipe_drop_input(&f->pipe);
    tally_app_worker_hooks.stop(&f->app);
    /* The memory counter closes at once: nothing is left on the loop. */
    int rc = f->app.counter != NULL || uv_loop_alive(&f->loop) ? -1 : 0;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    rc |= uv_loop_close(&f->loop);
    tally_app_free(&f->app);
    tally_pipe_env_free(&f->env);
    tally_buf_free(&f->out);
    free(f);
    return rc;
}

/* A new connection (the previous one fully answered), the counter at 0. */
void reopen(fx_t *f)
{
    assert_int_equal(f->pipe.pending, 0);
    tally_pipe_drop_input(&f->pipe);
    tally_pipe_init(&f->pipe, &f->env, f);
    atomic_store(&f->memory.value, 0);
    f->out.len = 0;
}

/* One read: the bytes go through the shared read buffer, which is scribbled
 * over afterwards (the pipe must have copied what it keeps). */
void feed(fx_t *f, const char *data, size_t len)
{
    assert_true(len <= sizeof readbuf);
    memcpy(readbuf, data, len);
    assert_int_equal(tally_pipe_input(&f->pipe, readbuf, len), 0);
    memset(readbuf, '#', len);
    f->dirty = true;
}

/* worker.c's on_check around conn.c's pump; returns all output so far. */
const char *pump(fx_t *f)
{
    for (;;) {
        tally_app_worker_hooks.turn(&f->app);
        if (!f->dirty)
            break;
        f->dirty = false;
        do
            tally_pipe_take(&f->pipe, &f->out);
        while (tally_pipe_resume(&f->pipe));
    }
    tally_pipe_env_turn(&f->env);
    tally_buf_byte(&f->out, '\0');
    assert_false(f->out.oom);
    f->out.len--;
    return f->out.data;
}

/* Serves s in reads of `piece` bytes (0: one read), pumping after each;
 * returns what was answered, NUL-terminated. */
const char *serve(fx_t *f, const char *s, size_t piece)
{
    const char *out = NULL;
    f->out.len = 0;
    for (size_t off = 0, n, len = strlen(s); off < len || out == NULL; off += n) {
        n = piece && len - off > piece ? piece : len - off;
        feed(f, s + off, n);
        out = pump(f);
    }
    return out;
}

/* pre, then n times s, then post, into a static buffer. */
const char *rep(const char *pre, const char *s, int n, const char *post)
{
    static char buf[16 * 1024];
    int len = snprintf(buf, sizeof buf, "%s", pre);
    for (int i = 0; i < n; i++)
        len += snprintf(buf + len, sizeof buf - (size_t)len, s, i + 1);
    assert_true(len + strlen(post) < sizeof buf);
    strcat(buf, post);
    return buf;
}

/* Header name's value in a (NULL: none), which appears at most once. */
const char *hdr(const answer_t *a, const char *name)
{
    static char v[128];
    char pat[40];
    size_t n = (size_t)snprintf(pat, sizeof pat, "\r\n%s: ", name);
    const char *at = memmem(a->head, a->head_len, pat, n), *end = a->head + a->head_len;
    if (at == NULL)
        return NULL;
    assert_null(memmem(at + 1, (size_t)(end - at - 1), pat, n));
    snprintf(v, sizeof v, "%.*s", (int)strcspn(at + n, "\r"), at + n);
    return v;
}

void hdr_is(const answer_t *a, const char *name, const char *want)
{
    const char *v = hdr(a, name);
    assert_string_equal(v ? v : "(none)", want ? want : "(none)");
}

/* Reads the answer at *p (head: to a HEAD, no body) and moves *p past it. */
static void read_answer(const char **p, bool head, answer_t *a)
{
    static const char reasons[] = "|200 OK|400 Bad Request|401 Unauthorized|404 Not Found|405 "
                                  "Method Not Allowed|408 Request Timeout|413 Content Too Large|"
                                  "431 Request Header Fields Too Large|503 Service Unavailable|"
                                  "505 HTTP Version Not Supported|";
    const char *s = *p, *end = strstr(s, "\r\n\r\n"), *l;
    char line[64];
    assert_non_null(end);
    *a = (answer_t){atoi(s + 9), s, end + 4, (size_t)(end + 2 - s), 0};
    size_t len = strcspn(s, "\r\n");
    assert_true(len > 13 && len < 60 && memcmp(s, "HTTP/1.1 ", 9) == 0);
    snprintf(line, sizeof line, "|%.*s|", (int)len - 9, s + 9);
    if (strstr(reasons, line) == NULL)
        fail_msg("unexpected status line %s", line);
    for (l = s + len; l < end; l += len) {
        assert_memory_equal(l, "\r\n", 2); /* no bare CR or LF */
        l += 2;
        len = strspn(l, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-");
        assert_true(len > 0 && l[len] == ':' && l[len + 1] == ' ' && l[len + 2] != ' ');
        len = strcspn(l, "\r\n");
    }
    assert_ptr_equal(l, end);
    hdr_is(a, "Server", "tally");
    hdr_is(a, "Date", cur->env.resp.date);
    const char *cl = hdr(a, "Content-Length");
    assert_true(cl && cl[0] && strspn(cl, "0123456789") == strlen(cl));
    a->body_len = head ? 0 : strtoul(cl, NULL, 10);
    assert_true(strlen(a->body) >= a->body_len);
    *p = a->body + a->body_len;
}

/* GET /'s number, from a body of the exact padded shape; -cap for the
 * {"Go":"away!"} one. */
static long long num(const answer_t *a)
{
    static const char hello[] = "{\"hello\":\"world\",\"request_num\":",
                      away[] = "{\"Go\":\"away!\",\"request_num\":";
    const char *b = a->body, *e = b + a->body_len - 1;
    hdr_is(a, "Content-Type", "application/json");
    assert_int_equal(a->body_len, tally_root_len(cur->cfg->cap));
    assert_true(json_check_document(b, a->body_len));
    bool capped = memcmp(b, away, sizeof away - 1) == 0;
    size_t n = capped ? sizeof away - 1 : sizeof hello - 1;
    assert_true((capped || memcmp(b, hello, n) == 0) && isdigit((unsigned char)b[n]));
    char *d;
    long long v = strtoll(b + n, &d, 10);
    assert_true(d + strspn(d, " ") == e && *e == '}');
    return capped ? -v : v;
}

/* Reads every answer of out into ans[] and checks it against spec, a word
 * per answer: the status, then "#n" (GET /'s number n, -cap when capped),
 * "c" or "k" (Connection: close or keep-alive, else none), "H" (to a HEAD:
 * no body). Returns how many. */
unsigned check(const char *out, const char *spec)
{
    unsigned n = 0;
    for (const char *p = out; *p; n++) {
        char w[32];
        size_t wl = strcspn(spec, " ");
        assert_true(n < N(ans) && wl > 0 && wl < sizeof w);
        snprintf(w, sizeof w, "%.*s", (int)wl, spec);
        spec += wl + (spec[wl] == ' ');
        read_answer(&p, strchr(w, 'H') != NULL, &ans[n]);
        assert_int_equal(ans[n].status, atoi(w));
        hdr_is(&ans[n], "Connection", strchr(w, 'c') ? "close" : strchr(w, 'k') ? "keep-alive" : 0);
        if (strchr(w, '#'))
            assert_int_equal(num(&ans[n]), atoll(strchr(w, '#') + 1));
    }
    assert_string_equal(spec, ""); /* no answer is missing */
    return n;
}

void body_is(const answer_t *a, const char *body)
{
    assert_int_equal(a->body_len, strlen(body));
    assert_memory_equal(a->body, body, a->body_len);
}

/* The pipe's state: slots in use, deferred, input kept, closing, unread. */
void pipe_is(fx_t *f, int count, int pending, bool saved, bool closing, bool unread)
{
    assert_int_equal(f->pipe.count, count);
    assert_int_equal(f->pipe.pending, pending);
    assert_int_equal(f->pipe.saved != NULL, saved);
    assert_int_equal(f->pipe.close_after, closing);
    assert_int_equal(f->pipe.unread, unread);
}

/* Serves each row (fresh: on a new connection, the counter at 0). A row
 * whose last answer closes sends more after it: left unread, and nothing
 * more is answered nor claimed. */
void run(fx_t *f, const row_t *rows, size_t n, bool fresh)
{
    for (size_t i = 0; i < n; i++) {
        if (fresh)
            reopen(f);
        const answer_t *a = &ans[check(serve(f, rows[i].req, 0), rows[i].spec) - 1];
        if (rows[i].body)
            body_is(a, rows[i].body);
        if (rows[i].name)
            hdr_is(a, rows[i].name, rows[i].value);
        bool closes = strchr(rows[i].spec, 'c') != NULL;
        pipe_is(f, 0, 0, false, closes, closes);
        int64_t claimed = atomic_load(&f->memory.value);
        if (closes)
            assert_string_equal(serve(f, GET, 0), "");
        assert_int_equal(atomic_load(&f->memory.value), claimed);
    }
}
