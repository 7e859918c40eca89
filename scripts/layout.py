#!/usr/bin/python3
"""Checks the shape of the tree (README "Architecture"); CI runs it.

    scripts/layout.py        every check; the last line is "N passed, N failed"

1. layers: every #include "..." in src/ points at a file of its own layer or
   of a layer it may use (the table LAYERS below), never up the order;
2. cycles: no include cycle between files (a cycle between folders is ruled
   out by 1, since LAYERS is itself checked to be acyclic);
3. routes: each route path of src/app/routes.c's table is written as a
   string literal in no other file under src/;
4. sizes: no file under src/, tests/ or bench/ has more than 500 lines;
5. fuzzers: no fuzz target repeats 6 lines of code of src/ in a row (a
   copy of src/ code rather than a test of it).
Exits 1 when a check fails, printing each offence as path:line: reason.
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
SRC = os.path.join(ROOT, "src")
MAX_LINES = 500

# What each layer may include, besides itself. "." is src/ itself: config.c
# (it checks URLs with counter/url.h) and main.c (wiring: may use
# everything). No layer but main reads the configuration: each takes its
# own parameter struct, which main fills from it.
LAYERS = {
    "base": set(),
    "http": {"base"},
    "counter": {"base"},
    "server": {"base", "http"},
    "config": {"base", "counter"},
    "app": {"base", "http", "counter", "server"},
    "main": {"base", "http", "counter", "server", "config", "app"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def layer_of(rel):
    """rel: a path under src/ ("server/conn.c", "config.h", "main.c")."""
    top = rel.split("/")[0]
    if top in LAYERS:
        return top
    if rel.startswith("config."):
        return "config"
    if rel == "main.c":
        return "main"
    return None


def src_files():
    out = []
    for d, _, names in os.walk(SRC):
        for n in names:
            if n.endswith((".c", ".h")):
                out.append(os.path.relpath(os.path.join(d, n), SRC))
    return sorted(out)


def includes(rel):
    """(line number, target) of each quoted include of src/rel that names a
    file of src/ (system and generated headers such as llhttp.h and
    version.h are left out)."""
    found = []
    with open(os.path.join(SRC, rel), encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m and os.path.exists(os.path.join(SRC, m.group(1))):
                found.append((i, m.group(1)))
            elif m and m.group(1) not in ("llhttp.h", "version.h"):
                found.append((i, "?" + m.group(1)))
    return found


def check_layers_acyclic():
    seen, done = set(), set()

    def visit(n, path):
        if n in done:
            return None
        if n in seen:
            return path + [n]
        seen.add(n)
        for m in LAYERS[n]:
            c = visit(m, path + [n])
            if c:
                return c
        done.add(n)
        return None

    for n in LAYERS:
        c = visit(n, [])
        if c:
            return ["LAYERS itself has a cycle: " + " -> ".join(c)]
    return []


def check_layers(files):
    bad = []
    for rel in files:
        me = layer_of(rel)
        if me is None:
            bad.append(f"src/{rel}:1: not in any layer (base, http, counter, server, app, "
                       "config.*, main.c)")
            continue
        for line, target in includes(rel):
            if target.startswith("?"):
                bad.append(f"src/{rel}:{line}: #include \"{target[1:]}\" names no file of src/ "
                           "(write the path from src/, as \"base/buf.h\")")
                continue
            it = layer_of(target)
            if it != me and it not in LAYERS[me]:
                bad.append(f"src/{rel}:{line}: {me} may not include {target} ({it}): "
                           f"{me} uses only {', '.join(sorted(LAYERS[me])) or 'itself'}")
    return bad


def check_cycles(files):
    graph = {rel: [t for _, t in includes(rel) if not t.startswith("?")] for rel in files}
    state = {}
    bad = []

    def visit(n, stack):
        state[n] = 1
        stack.append(n)
        for m in graph.get(n, []):
            if state.get(m) == 1:
                cyc = stack[stack.index(m):] + [m]
                bad.append("include cycle: " + " -> ".join("src/" + c for c in cyc))
            elif m not in state:
                visit(m, stack)
        stack.pop()
        state[n] = 2

    for n in files:
        if n not in state:
            visit(n, [])
    return bad


def route_paths():
    """The paths of the route table: the first string of each row of the
    `routes[]` array in src/app/routes.c."""
    with open(os.path.join(SRC, "app", "routes.c"), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"routes\[\]\s*=\s*\{(.*?)\n\};", text, re.S)
    if not m:
        return None
    return re.findall(r'^\s*\{\s*"([^"]*)"', m.group(1), re.M)


def check_routes(files):
    paths = route_paths()
    if not paths:
        return ["src/app/routes.c: no routes[] table found"]
    bad = []
    for p in paths:
        lit = '"' + p + '"'
        where = []
        for rel in files:
            with open(os.path.join(SRC, rel), encoding="utf-8") as f:
                for i, line in enumerate(f, 1):
                    code = line.split("//")[0]
                    if lit in code and not code.lstrip().startswith(("*", "/*")):
                        where.append((rel, i))
        files_with = sorted({r for r, _ in where})
        if files_with != ["app/routes.c"]:
            bad.append(f"route {lit} is written in " +
                       ", ".join(f"src/{r}:{i}" for r, i in where) +
                       " (only src/app/routes.c may name it)")
    return bad


def check_sizes():
    bad = []
    for top in ("src", "tests", "bench"):
        for d, dirs, names in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [x for x in dirs if x not in ("corpus", "results", "__pycache__")]
            for n in names:
                if not n.endswith((".c", ".h", ".py", ".sh", ".build")) and n not in ("run",):
                    continue
                p = os.path.join(d, n)
                with open(p, encoding="utf-8", errors="replace") as f:
                    lines = sum(1 for _ in f)
                if lines > MAX_LINES:
                    bad.append(f"{os.path.relpath(p, ROOT)}: {lines} lines (at most {MAX_LINES})")
    return bad


WINDOW = 6


def code_lines(path):
    """(line number, text) of each line of path that carries code: comments,
    blank lines, braces and preprocessor lines left out, whitespace
    squeezed."""
    out = []
    in_comment = False
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            t = line.strip()
            if in_comment:
                if "*/" in t:
                    in_comment = False
                    t = t.split("*/", 1)[1].strip()
                else:
                    continue
            if t.startswith("/*"):
                if "*/" not in t:
                    in_comment = True
                continue
            t = re.sub(r"/\*.*?\*/", "", t).split("//")[0].strip()
            if not t or t in ("{", "}", "};", "} else {") or t.startswith("#"):
                continue
            out.append((i, " ".join(t.split())))
    return out


def windows(lines):
    for k in range(len(lines) - WINDOW + 1):
        yield lines[k][0], tuple(t for _, t in lines[k:k + WINDOW])


def check_fuzzers(files):
    """A fuzz target that repeats WINDOW lines of code of src/ in a row
    holds a copy of it (the review found ~250 such lines once)."""
    seen = {}
    for rel in files:
        if rel.endswith(".c"):
            for line, w in windows(code_lines(os.path.join(SRC, rel))):
                seen.setdefault(w, f"src/{rel}:{line}")
    bad = []
    fuzz = os.path.join(ROOT, "tests", "fuzz")
    for n in sorted(os.listdir(fuzz)):
        if not n.endswith(".c"):
            continue
        last = -100
        for line, w in windows(code_lines(os.path.join(fuzz, n))):
            if w in seen and line > last + WINDOW:
                bad.append(f"tests/fuzz/{n}:{line}: {WINDOW} lines as in {seen[w]} "
                           "(a fuzzer links src/ code, it does not copy it)")
                last = line
    return bad


def main():
    files = src_files()
    checks = [
        ("layers", lambda: check_layers_acyclic() + check_layers(files)),
        ("include cycles", lambda: check_cycles(files)),
        ("route paths", lambda: check_routes(files)),
        ("file sizes", check_sizes),
        ("fuzzers link, not copy", lambda: check_fuzzers(files)),
    ]
    passed = failed = 0
    for name, fn in checks:
        bad = fn()
        if bad:
            failed += 1
            print(f"FAIL {name}")
            for b in bad:
                print("  " + b)
        else:
            passed += 1
            print(f"ok   {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
