"""The benchmark's report: medians per server and load, the targets (each
pair's per-repetition ratios), the informational nginx JSON-log ratios,
the CAP-100 servers' hellos; written as results.md, raw.json and the
results.png chart (gnuplot)."""

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from bench_servers import BASELINE, NGINX_JSON
from loads import LOAD_TITLES, LOADS, measure_order
from procfs import PAGE


def median(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def machine():
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PHYS_PAGES") * PAGE / 2**30
    osname = "Linux"
    try:
        osname = re.search(r'PRETTY_NAME="([^"]+)"', Path("/etc/os-release").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    return "%s, %d CPUs (%s), %.0f GiB RAM, kernel %s" % (osname, os.cpu_count(), cpu, mem,
                                                          platform.release())


def summarize(results, servers):
    table = {}
    for s in servers:
        for load in LOADS:
            runs = [r for r in results if r["server"] == s.name and r["load"] == load]
            if not runs:
                continue
            table[(s.name, load)] = {
                k: median([r[k] for r in runs])
                for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "rss_mb")
            }
            table[(s.name, load)]["failed"] = sum((r.get("failed") or 0) for r in runs)
            table[(s.name, load)]["non2xx"] = sum((r.get("non2xx") or 0) for r in runs)
    return table


def paired_ratios(results, a, b, load, key="rps"):
    """a's value over b's, repetition by repetition (measured back to back)."""
    val = {(r["server"], r["rep"]): r.get(key) for r in results if r["load"] == load}
    reps = sorted({rep for (_, rep) in val})
    return [val[(a, rep)] / val[(b, rep)] for rep in reps
            if val.get((a, rep)) and val.get((b, rep))]


def pair_target(results, table, label, a, b, load, key, lim, cmp):
    """A target comparing a with b: (label, median of the per-repetition
    ratios, limit, cmp, ratio of the medians, per-repetition ratios)."""
    pairs = paired_ratios(results, a, b, load, key)
    va = (table.get((a, load)) or {}).get(key)
    vb = (table.get((b, load)) or {}).get(key)
    return (label, median(pairs), lim, cmp, va / vb if va and vb else None, pairs)


def targets(table, results, idle_mb):
    """(label, value, limit, "ge" or "le", ratio of the medians or None,
    per-repetition ratios or None) for every target, in issue 5's order; the
    value is None when the servers it needs were not measured."""
    ab_t = table.get(("tally memory", "ab")) or {}
    tally_runs = [v for (n, _), v in table.items() if n.startswith("tally")]
    return [
        pair_target(results, table, "wrk: tally memory >= 1.0 x nginx static",
                    "tally memory", "nginx static", "wrk", "rps", 1.0, "ge"),
        pair_target(results, table, "wrk: tally redis, every request claiming >= 0.7 x tally memory",
                    "tally redis, claims", "tally memory, claims", "wrk", "rps", 0.7, "ge"),
        pair_target(results, table,
                    "wrk: tally postgres, every request claiming >= 0.5 x tally memory",
                    "tally postgres, claims", "tally memory, claims", "wrk", "rps", 0.5, "ge"),
        pair_target(results, table, "ab: tally CPU per request <= nginx's",
                    "tally memory", "nginx static", "ab", "cpu_us_per_req", 1.0, "le"),
        ("ab: tally p99 <= 2 ms", ab_t.get("p99_ms"), 2.0, "le", None, None),
        ("ab: 0 failed requests (all tally servers, all loads)",
         sum(v["failed"] for v in tally_runs) if tally_runs else None, 0, "le", None, None),
        pair_target(results, table, "wrk: tally memory >= 20 x the Python original",
                    "tally memory", "Python original", "wrk", "rps", 20.0, "ge"),
        ("RSS with 1,000 idle keep-alive connections <= 10 MB", idle_mb, 10.0, "le", None, None),
    ]


def informational(table, results):
    """Ratios with nginx's JSON-logging variant, in targets()'s shape (no
    limit): shown, never judged. Empty if it was not measured."""
    if not any(n == NGINX_JSON for (n, _) in table):
        return []
    return [
        pair_target(results, table, "wrk: tally memory / nginx static, JSON access log (req/s)",
                    "tally memory", NGINX_JSON, "wrk", "rps", None, None),
        pair_target(results, table, "ab: tally memory's CPU per request / nginx JSON log's",
                    "tally memory", NGINX_JSON, "ab", "cpu_us_per_req", None, None),
        pair_target(results, table, "wrk: nginx JSON log / nginx static (req/s)",
                    NGINX_JSON, "nginx static", "wrk", "rps", None, None),
    ]


def against_baseline(table, results):
    """This build over bench/run --baseline's, per load, in targets()'s shape
    (no limit): CPU per request and req/s. Empty without a baseline."""
    if not any(n == BASELINE for (n, _) in table):
        return []
    out = []
    for load in LOADS:
        out.append(pair_target(results, table, "%s: CPU per request, this build / baseline" % load,
                               "tally memory", BASELINE, load, "cpu_us_per_req", None, None))
        out.append(pair_target(results, table, "%s: req/s, this build / baseline" % load,
                               "tally memory", BASELINE, load, "rps", None, None))
    return out


def ratio_table(lines, rows, title, intro, spec):
    """Appends a section of ratios (rows in targets()'s shape, no limit) to
    lines; nothing when rows is empty."""
    if not rows:
        return
    lines += ["## " + title, "", intro, "",
              "| ratio | median of per-repetition ratios | ratio of medians | per repetition |",
              "|---|---:|---:|---|"]
    for name, val, _, _, of_medians, pairs in rows:
        lines.append("| %s | %s | %s | %s |" % (name, fmt(val, spec), fmt(of_medians, spec),
                                               " ".join(format(r, spec) for r in pairs)))
    lines.append("")


def write_report(outdir, results, servers, idle_mb, args, started):
    table = summarize(results, servers)
    lines = ["# tally benchmark", "",
             "Run %s, %d repetition(s), medians. Machine: %s." % (
                 started.strftime("%Y-%m-%d %H:%M UTC"), args.reps, machine()),
             "Client (ab, wrk) and servers share the CPUs; compare ratios within this run and "
             "the servers' own CPU time per request. Within each load the servers were measured "
             "in the order %s; reversed every other repetition." % "; ".join(
                 s.name for s in measure_order(servers)), ""]
    for load in LOADS:
        lines += ["## " + LOAD_TITLES[load].replace("10000", str(args.ab_n))
                  .replace("50000", str(args.abk_n)).replace("10s", "%ds" % args.wrk_s), "",
                  "| server | req/s | p50 ms | p99 ms | server CPU µs/req | RSS MB | failed | non-2xx |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for s in servers:
            v = table.get((s.name, load))
            if not v:
                continue
            lines.append("| %s (%s) | %s | %s | %s | %s | %s | %d | %d |" % (
                s.name, s.note, fmt(v["rps"], ".0f"), fmt(v["p50_ms"], ".2f"),
                fmt(v["p99_ms"], ".2f"), fmt(v["cpu_us_per_req"], ".1f"), fmt(v["rss_mb"], ".1f"),
                v["failed"], v["non2xx"]))
        lines.append("")
    lines += ["tallyd (memory) RSS with 1,000 idle keep-alive connections: %s MB" % fmt(idle_mb, ".1f"),
              "", "## Targets", "",
              "A target comparing two servers is the median of their ratios per repetition "
              "(the pair measured back to back); the ratio of their medians is shown beside it.",
              "", "| target | measured | ratio of medians | per repetition | |",
              "|---|---:|---:|---|---|"]
    for name, val, lim, cmp, of_medians, pairs in targets(table, results, idle_mb):
        if val is None:
            verdict = "not measured"
        else:
            verdict = "met" if (val <= lim if cmp == "le" else val >= lim) else "NOT met"
            if args.smoke:
                verdict += " (smoke run: not binding)"
        lines.append("| %s | %s | %s | %s | %s |" % (
            name, fmt(val, "d" if isinstance(val, int) else ".2f"), fmt(of_medians, ".2f"),
            " ".join("%.2f" % r for r in pairs) if pairs else "", verdict))
    lines.append("")
    ratio_table(lines, informational(table, results),
                "nginx with a JSON access log (informational, not targets)",
                "tallyd writes a JSON line per request; nginx static, with its access log "
                "off, does not. nginx static, JSON access log writes one too "
                "(`log_format escape=json`, buffered 64 KiB / 1 s), measured right after "
                "nginx static and so one server away from tally memory.", ".2f")
    ratio_table(lines, against_baseline(table, results),
                "This build against the baseline (informational)",
                "tally memory (this build, %s) and tally baseline (%s), both memory, CAP 100, "
                "measured back to back in every repetition." % (args.tallyd, args.baseline), ".3f")
    counted = [s for s in servers if s.hellos is not None]
    if counted:
        lines += ["## Exactness (facts, not targets)", "",
                  "Requests each CAP-100 server told \"hello\" over the run, counted from its "
                  "log's \"Request #N\" lines (record.extra.request_count). No counter is reset "
                  "during a run, so they all come from the server's first load "
                  "(ab -n %d -c 10)." % args.ab_n, "",
                  "| server | hellos | distinct N | N from-to | |", "|---|---:|---:|---|---|"]
        for s in counted:
            h = s.hellos
            if s.name.startswith("tally"):
                verdict = ("exact: 1 to 100, each once" if sorted(h) == list(range(1, 101))
                           else "NOT exact")
            else:
                verdict = ("racy get-then-set: %d hellos beyond 100" % (len(h) - 100)
                           if len(h) > 100 else "")
            lines.append("| %s | %d | %d | %s | %s |" % (
                s.name, len(h), len(set(h)), "%d-%d" % (min(h), max(h)) if h else "-", verdict))
        lines.append("")
    (outdir / "results.md").write_text("\n".join(lines))
    (outdir / "raw.json").write_text(json.dumps({"machine": machine(), "started": started.isoformat(),
                                                 "args": vars(args), "runs": results,
                                                 "idle_rss_mb": idle_mb,
                                                 "hellos": {s.name: s.hellos for s in counted}},
                                                indent=1))
    plot(outdir, table, servers)
    return "\n".join(lines)


def plot(outdir, table, servers):
    if not shutil.which("gnuplot"):
        print("bench: gnuplot not found; no chart", file=sys.stderr)
        return
    dat = outdir / "results.dat"
    with open(dat, "w") as f:
        f.write("server " + " ".join('"%s"' % LOAD_TITLES[l].split(" (")[0] for l in LOADS) + "\n")
        for s in servers:
            vals = [(table.get((s.name, l)) or {}).get("rps") or 0 for l in LOADS]
            f.write('"%s" %s\n' % (s.name, " ".join("%.0f" % v for v in vals)))
    script = """
set terminal pngcairo size 1100,560 font ",10"
set output '%s'
set title "req/s, median of the run (client and server share %d CPUs)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top right
set ylabel "requests per second"
set yrange [0:*]
set grid ytics
set xtics rotate by -20 scale 0
plot '%s' using 2:xtic(1) title columnheader(2), '' using 3 title columnheader(3), \\
     '' using 4 title columnheader(4)
""" % (outdir / "results.png", os.cpu_count(), dat)
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        print("bench: gnuplot failed: " + r.stderr, file=sys.stderr)
    dat.unlink()
