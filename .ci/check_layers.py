#!/usr/bin/env python3
"""Checks that no include or call in lib/ runs up a layer (docs/design.md,
"Layers").

Layers, lowest first, one directory each under lib/:
    util < core < feat < exec < compose
A file may include the public header (fut.h) and the private headers of its
own layer or of a lower one.  compose may use only public, core and util
headers.  With a build directory, the same rule is checked on the objects:
every fut_ or fut__ symbol an object of lib/ uses must be defined in its own
layer or a lower one (compose: internal symbols only from core or util).
The one exception is by design: the core reads fut__kinds, the table of
kind operations that the feature layer fills.

usage: check_layers.py [BUILD_DIR]     exit status 1 on a violation
"""
import os
import re
import subprocess
import sys

LAYERS = ["util", "core", "feat", "exec", "compose"]
RANK = {name: i for i, name in enumerate(LAYERS)}
ALLOWED_UP = {("core", "fut__kinds")}
ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
LIB = os.path.join(ROOT, "lib")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def may_use(user, provider, internal=True):
    if user == "compose" and internal:
        return RANK[provider] <= RANK["core"]
    return RANK[provider] <= RANK[user]


def layer_of(path):
    rel = os.path.relpath(path, LIB).split(os.sep)
    return rel[0] if len(rel) > 1 and rel[0] in RANK else None


def check_includes():
    bad = []
    for dirpath, _, files in os.walk(LIB):
        for name in sorted(files):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, name)
            layer = layer_of(path)
            rel = os.path.relpath(path, ROOT)
            if layer is None:
                bad.append(f"{rel}: not inside a layer directory")
                continue
            with open(path, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m or m.group(1) == "fut.h":
                        continue
                    target = m.group(1).split("/")[0]
                    if target not in RANK:
                        bad.append(f"{rel}:{n}: includes \"{m.group(1)}\", "
                                   "not a layer's header")
                    elif not may_use(layer, target):
                        bad.append(f"{rel}:{n}: {layer} includes "
                                   f"{m.group(1)} ({target} is above it)")
    return bad


def objects(build_dir):
    """Object files of the fut target, keyed by the lib/ source they
    came from."""
    out = {}
    for dirpath, _, files in os.walk(build_dir):
        if "fut.dir" not in dirpath.split(os.sep):
            continue
        for name in files:
            if name.endswith(".c.o"):
                path = os.path.join(dirpath, name)
                rel = path.split(os.sep + "fut.dir" + os.sep, 1)[1]
                src = os.path.join(ROOT, rel[:-2])
                # Objects of sources that moved away are stale: skip them.
                if rel.startswith("lib" + os.sep) and os.path.exists(src):
                    out[src] = path
    return out


def nm(path):
    text = subprocess.run(["nm", "-P", path], check=True,
                          capture_output=True, text=True).stdout
    defined, used = set(), set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[0].startswith("fut_"):
            continue
        (used if parts[1] == "U" else defined).add(parts[0])
    return defined, used


def check_symbols(build_dir):
    objs = objects(build_dir)
    if not objs:
        return [f"{build_dir}: no objects of the fut target found"]
    owner, uses = {}, {}
    for src, obj in objs.items():
        defined, used = nm(obj)
        for sym in defined:
            owner[sym] = layer_of(src)
        uses[src] = used
    bad = []
    for src, used in sorted(uses.items()):
        layer = layer_of(src)
        for sym in sorted(used):
            provider = owner.get(sym)
            if provider is None or (layer, sym) in ALLOWED_UP:
                continue
            if not may_use(layer, provider, sym.startswith("fut__")):
                bad.append(f"{os.path.relpath(src, ROOT)}: {layer} uses "
                           f"{sym} from {provider}")
    return bad


def main():
    bad = check_includes()
    if len(sys.argv) > 1:
        bad += check_symbols(sys.argv[1])
    for line in bad:
        print("layering:", line)
    if not bad:
        print("layering: no include or call runs up a layer")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
