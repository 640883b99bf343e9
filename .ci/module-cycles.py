#!/usr/bin/env python3
"""Fails when modules of src/ import each other in a cycle.

Builds the graph of `src/` files from their `crate::…` and `super::…` paths (in `use` items and
in code), and reports every strongly connected component larger than one file.
Usage: python3 .ci/module-cycles.py [src] [--show]
"""
import os
import re
import sys


def module_of(path, src):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return rel


def file_of(segments, src):
    """The file that defines the longest prefix of `segments`, if any."""
    for n in range(len(segments), 0, -1):
        base = os.path.join(src, *segments[:n])
        for candidate in (base + ".rs", os.path.join(base, "mod.rs")):
            if os.path.isfile(candidate):
                return candidate
    return None


def expand(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e] (roughly; enough for module paths)."""
    tree = re.sub(r"\s+", "", tree)
    depth, start = 0, None
    for i, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                prefix, inner, rest = tree[:start], tree[start + 1:i], tree[i + 1:]
                parts, level, cur = [], 0, ""
                for c in inner:
                    if c == "," and level == 0:
                        parts.append(cur)
                        cur = ""
                        continue
                    level += c == "{"
                    level -= c == "}"
                    cur += c
                parts.append(cur)
                out = []
                for part in parts:
                    if part:
                        out.extend(expand(prefix + part + rest))
                return out
    return [tree]


PATH = re.compile(r"\b(crate|super)((?:::(?:super|[A-Za-z_][A-Za-z0-9_]*))+)")
USE = re.compile(r"\buse\s+((?:crate|super)::[^;]+);", re.S)


def edges_of(path, src):
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"//[^\n]*", "", text)
    # Unit tests (`#[cfg(test)] mod tests { … }`, last in a file by convention) are not part of
    # the module's dependencies, and their `super` is the file itself.
    text = re.split(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)[0]
    here = module_of(path, src)
    paths = []
    for m in USE.finditer(text):
        paths.extend(expand(m.group(1)))
    text_wo_use = USE.sub("", text)
    paths.extend(m.group(0) for m in PATH.finditer(text_wo_use))
    targets = set()
    for p in paths:
        segs = [s for s in p.split("::") if s]
        if not segs:
            continue
        if segs[0] == "crate":
            resolved = segs[1:]
        else:
            # `super` is the parent of this module (of the file's own module for mod.rs).
            base = list(here)
            while segs and segs[0] == "super":
                base = base[:-1]
                segs = segs[1:]
            resolved = base + segs
        target = file_of([s for s in resolved if s not in ("self", "*")], src)
        if target and os.path.abspath(target) != os.path.abspath(path):
            targets.add(os.path.relpath(target, src))
    return targets


def sccs(graph):
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    src = args[0] if args else "src"
    graph = {}
    for root, _, files in os.walk(src):
        for name in files:
            if name.endswith(".rs"):
                path = os.path.join(root, name)
                graph[os.path.relpath(path, src)] = edges_of(path, src)
    if "--show" in sys.argv:
        for f in sorted(graph):
            print(f"{f} -> {', '.join(sorted(graph[f]))}")
    cycles = [c for c in sccs(graph) if len(c) > 1]
    for c in cycles:
        print(f"import cycle among {len(c)} files: {', '.join(c)}")
        for f in c:
            print(f"  {f} -> {', '.join(sorted(t for t in graph[f] if t in c))}")
    if cycles:
        sys.exit(1)
    print(f"no import cycle among {len(graph)} files")


if __name__ == "__main__":
    main()
