#!/usr/bin/env python3
"""`perf script` output (with call graphs) to folded stacks and a flame graph SVG, and the
top functions by self samples; no other tool needed (inferno's output, in short).
  perf record -F 499 --call-graph dwarf -p PID -- sleep 6
  perf script --no-inline -F comm,tid,ip,sym | bench/flame.py OUT.svg [TITLE] > top.md
"""
import html, re, sys
from collections import Counter

def stacks(lines):
    cur = None
    for line in lines:
        if not line.strip():
            if cur:
                yield cur
            cur = None
        elif not line[0].isspace():
            cur = [line.split()[0]]  # the thread's name: the root frame
        elif cur is not None:
            parts = line.strip().split(None, 1)
            name = parts[1] if len(parts) > 1 else "[unknown]"
            cur.insert(1, re.sub(r"\s+\(.*\)$", "", name).replace(";", ":"))
    if cur:
        yield cur

def short(name):
    # Drop generic arguments: `Foo<A,B>::bar` → `Foo<…>::bar`, for legible labels.
    out, depth = [], 0
    for ch in name:
        if ch == "<":
            if depth == 0:
                out.append("<…")
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
            if depth == 0:
                out.append(">")
        elif depth == 0:
            out.append(ch)
    return "".join(out)

def main():
    out, title = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "tokend")
    folded = Counter(";".join(short(f) for f in s) for s in stacks(sys.stdin))
    total = sum(folded.values())
    selfc = Counter()
    for k, n in folded.items():
        selfc[k.rsplit(";", 1)[-1]] += n
    print(f"{total} samples\n\n| function | % of samples (self) |\n| --- | ---: |")
    for name, n in selfc.most_common(10):
        print(f"| `{name}` | {100 * n / total:.1f} |")
    # The tree, then the SVG: one rect per frame, width by samples.
    tree = {}
    for k, n in folded.items():
        node = tree
        for f in k.split(";"):
            node = node.setdefault(f, [0, {}])
            node[0] += n
            node = node[1]
    W, H, pad = 1200.0, 16, 10
    rects, maxdepth = [], [0]
    def walk(children, x, depth):
        for name, (n, kids) in sorted(children.items()):
            w = (W - 2 * pad) * n / total
            if w >= 0.3:
                rects.append((x, depth, w, name, n))
                maxdepth[0] = max(maxdepth[0], depth)
                walk(kids, x, depth + 1)
            x += w
    walk(tree, pad, 0)
    height = (maxdepth[0] + 1) * H + 40
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{int(W)}" height="{height}" font-family="monospace" font-size="11">',
           f'<rect width="100%" height="100%" fill="#fff"/><text x="{pad}" y="20" font-size="14">{html.escape(title)}: {total} samples</text>']
    for x, d, w, name, n in rects:
        y = height - (d + 1) * H
        h = abs(hash(name)) % 60
        label = html.escape(name[: int(w / 6.6)]) if w > 20 else ""
        svg.append(f'<g><title>{html.escape(name)} ({n} samples, {100 * n / total:.2f}%)</title>'
                   f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{H - 1}" fill="rgb({205 + h % 50},{80 + h},{40})" rx="2"/>'
                   f'<text x="{x + 3:.1f}" y="{y + 11}">{label}</text></g>')
    svg.append("</svg>")
    open(out, "w").write("\n".join(svg))

main()
