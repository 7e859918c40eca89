/* test_pipeline.c - the sans-IO connection core (src/http/pipeline.c), its
 * mechanics, driven with bytes through pipe_fixture.h's loopback: pipelined
 * GET / in order (and at the cap); the ring pausing past TALLY_PIPE_SLOTS;
 * any split of the input giving the same output; draining; half-close;
 * tally_pipe_fail()'s 408; env->wake once per settled claim, and an answer
 * that is ready waiting behind the claims before it.
 * What each route and error answers: test_pipeline_answers.c.
 */
#include "pipe_fixture.h"

static void test_three_pipelined(void **state)
{
    fx_t *f = *state;
    bool cap2 = f->cfg->cap == 2;
    assert_int_equal(tally_root_len(f->cfg->cap), cap2 ? 33 : 35); /* 32 + digits of cap */
    check(serve(f, GET GET GET, 0), cap2 ? "200#1 200#2 200#-2" : "200#1 200#2 200#3");
    assert_int_equal(f->wakes, 3);
    pipe_is(f, 0, 0, false, false, false);
}

static void test_ring_full_keeps_the_rest(void **state)
{
    fx_t *f = *state;
    feed(f, rep("", GET, 40, ""), 40 * GET_LEN);
    pipe_is(f, TALLY_PIPE_SLOTS, TALLY_PIPE_SLOTS, true, false, false);
    assert_int_equal(f->pipe.saved_len - f->pipe.saved_off, (40 - TALLY_PIPE_SLOTS) * GET_LEN);
    check(pump(f), rep("", "200#%d ", 40, ""));
    assert_int_equal(f->wakes, 40);
    pipe_is(f, 0, 0, false, false, false);
}

static void test_any_split_same_output(void **state)
{
    fx_t *f = *state;
    static const size_t pieces[] = {1, 2, 3, 5, 13, 64, 200};
    char in[8192], spec[1024];
    snprintf(in, sizeof in, "%s",
             rep(GET REQ("HEAD /", "") REQ("GET /healthz?x=1", "User-Agent: split\r\n")
                     REQ("POST /", "Content-Length: 5\r\n") "hello" REQ(
                         "GET /nope", "") "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                 GET, 20, REQ("GET /", "Bad Header: x\r\n") GET));
    snprintf(spec, sizeof spec, "%s", rep("200#1 200H 200 405 404 200#3k ", "", 0, ""));
    char *ref = strdup(serve(f, in, 0));
    size_t ref_len = f->out.len;
    for (int i = 4; i < 24; i++)
        snprintf(spec + strlen(spec), sizeof spec - strlen(spec), "200#%d ", i);
    check(ref, strcat(spec, "400c"));
    pipe_is(f, 0, 0, false, true, true);
    for (size_t i = 0; i < N(pieces); i++) {
        reopen(f);
        const char *out = serve(f, in, pieces[i]);
        if (f->out.len != ref_len || memcmp(out, ref, ref_len) != 0)
            fail_msg("reads of %zu bytes answer differently", pieces[i]);
        pipe_is(f, 0, 0, false, true, true);
    }
    free(ref);
}

static void test_draining(void **state)
{
    fx_t *f = *state;
    check(serve(f, GET, 0), "200#1");
    feed(f, GET, 10); /* half a request, then the worker drains */
    pump(f);
    assert_true(f->pipe.http.in_message);
    f->env.draining = true;
    check(serve(f, &GET[10], 0), "200#2c");
    assert_false(f->pipe.unread);
    check(serve(f, GET, 0), ""); /* closing: nothing more */
    assert_true(f->pipe.close_after && f->pipe.unread);
}

static void test_half_close(void **state)
{
    fx_t *f = *state;
    feed(f, rep("", GET, 20, ""), 20 * GET_LEN - 5); /* 16 in the ring, the rest kept */
    tally_pipe_close_after(&f->pipe);                /* conn.c on EOF */
    check(pump(f), rep("", "200#%d ", TALLY_PIPE_SLOTS - 1, "200#16c"));
    assert_int_equal(f->pipe.count, 0);
}

static void test_fail_408(void **state)
{
    fx_t *f = *state;
    feed(f, GET GET, GET_LEN + 18); /* one whole, one half */
    assert_true(f->pipe.http.in_message);
    pipe_is(f, 1, 1, false, false, false);
    assert_true(tally_pipe_fail(&f->pipe, 408, "request not received in time"));
    pipe_is(f, 2, 1, false, true, true);
    assert_false(tally_pipe_fail(&f->pipe, 408, "again")); /* closing already */
    check(pump(f), "200#1 408c");                          /* still in order */
    body_is(&ans[1], "{\"error\":\"request not received in time\"}");
    assert_string_equal(serve(f, &GET[18], 0), "");

    reopen(f);
    feed(f, rep("", GET, TALLY_PIPE_SLOTS, ""), TALLY_PIPE_SLOTS * GET_LEN);
    assert_false(tally_pipe_fail(&f->pipe, 408, "ring full"));
    pipe_is(f, TALLY_PIPE_SLOTS, TALLY_PIPE_SLOTS, false, false, false);
    check(pump(f), rep("", "200#%d ", TALLY_PIPE_SLOTS - 1, "200#16"));
}

static void test_deferred_wake(void **state)
{
    fx_t *f = *state;
    feed(f, GET GET REQ("GET /healthz", ""), 2 * GET_LEN + sizeof REQ("GET /healthz", "") - 1);
    pipe_is(f, 3, 2, false, false, false);
    /* /healthz is ready, but waits behind the claims. */
    assert_int_equal(tally_pipe_take(&f->pipe, &f->out), 0);
    assert_false(tally_pipe_resume(&f->pipe));
    f->dirty = false;
    tally_app_worker_hooks.turn(&f->app); /* memory settles within the turn */
    assert_true(f->wakes == 2 && f->dirty);
    pipe_is(f, 3, 0, false, false, false);
    assert_int_equal(tally_pipe_take(&f->pipe, &f->out), 3);
    check(pump(f), "200#1 200#2 200");
    body_is(&ans[2], "{\"status\":\"ok\"}");
    assert_int_equal(f->wakes, 2);
}

int main(void)
{
    /* The claim and reset log lines would go to stdout, which is TAP's. */
    tally_log_min_level = TALLY_LOG_ERROR + 1;
    const struct CMUnitTest tests[] = {
        T(test_three_pipelined, DEF),
        T(test_three_pipelined, CAP2),
        T(test_ring_full_keeps_the_rest, DEF),
        T(test_any_split_same_output, DEF),
        T(test_draining, DEF),
        T(test_half_close, DEF),
        T(test_fail_408, DEF),
        T(test_deferred_wake, DEF),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
