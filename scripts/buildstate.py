#!/usr/bin/python3
"""What a meson build directory needs before it builds this source tree
with the given options (usage: buildstate.py DIR [-Dname=value...]).
Prints one word:
  ok           configured for this tree, with those options: build it
  reconfigure  this tree's build directory with other options (or half
               configured): meson setup --reconfigure with the options
  remake       absent, or not a build directory of this tree (left by an
               interrupted setup, or copied or moved here with the clone):
               remove it and set it up again
Run from the source tree's root (scripts/lib.sh's ensure_build does)."""
import json
import os
import subprocess
import sys


def main(argv):
    build, wanted = argv[0], argv[1:]
    try:
        with open(os.path.join(build, "meson-info", "meson-info.json")) as f:
            source = json.load(f)["directories"]["source"]
    except (OSError, ValueError, KeyError):
        return "remake"
    if (not os.path.exists(os.path.join(build, "meson-private", "coredata.dat"))
            or os.path.realpath(source) != os.path.realpath(".")):
        return "remake"
    if not os.path.exists(os.path.join(build, "build.ninja")):
        return "reconfigure"
    p = subprocess.run(["meson", "introspect", "--buildoptions", build], capture_output=True,
                       text=True)
    try:
        have = {o["name"]: o["value"] for o in json.loads(p.stdout)}
    except ValueError:
        return "reconfigure"
    for arg in wanted:
        name, _, want = arg[2:].partition("=")
        value = have.get(name)
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list):
            # newer meson: b_sanitize is an array, [] for none
            value = ",".join(value) or "none"
        if str(value) != want:
            return "reconfigure"
    return "ok"


if __name__ == "__main__":
    print(main(sys.argv[1:]))
