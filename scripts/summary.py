#!/usr/bin/python3
"""Counts test results: cmocka TAP cases from meson's testlog.json and pytest
cases from JUnit XML files (usage: summary.py FILE..., each a testlog.json or
an .xml). Prints one line "N passed, N failed" (the last
line of the run) and exits 1 when something failed or nothing ran.

A missing file, a meson test whose output holds no TAP result, a pytest run
that collected nothing (exit 5) or a skipped case all count as failures:
nothing passes by not running."""
import json
import re
import sys
import xml.etree.ElementTree as ET


def tap_counts(path):
    passed = failed = 0
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError:
        print(f"summary: {path} missing: unit tests did not run", file=sys.stderr)
        return 0, 1
    for line in lines:
        if not line.strip():
            continue
        t = json.loads(line)
        ok = not_ok = 0
        for out in (t.get("stdout") or "").splitlines():
            if re.match(r"^ok \d+", out):
                ok += 1
            elif re.match(r"^not ok \d+", out):
                not_ok += 1
        if t.get("result") not in ("OK", "EXPECTEDFAIL") and not_ok == 0:
            not_ok = 1  # crashed, timed out, or failed outside any case
        if ok + not_ok == 0:
            not_ok = 1
        passed += ok
        failed += not_ok
    return passed, failed


def junit_counts(path):
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        print(f"summary: {path} missing: end-to-end tests did not run", file=sys.stderr)
        return 0, 1
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    tests = fails = 0
    for s in suites:
        tests += int(s.get("tests", 0))
        fails += int(s.get("failures", 0)) + int(s.get("errors", 0)) + int(s.get("skipped", 0))
    if tests == 0:
        print("summary: pytest collected no tests", file=sys.stderr)
        return 0, 1
    return tests - fails, fails


def main(argv):
    if not argv:
        print("usage: summary.py RESULTS...  (meson's testlog.json, pytest's JUnit .xml)",
              file=sys.stderr)
        return 2
    passed = failed = 0
    for path in argv:
        p, f = tap_counts(path) if path.endswith(".json") else junit_counts(path)
        passed += p
        failed += f
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
