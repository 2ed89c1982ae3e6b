"""Module import graph of src/ at file level (crate::a::b paths, resolved to the file that holds them); prints the module and edge counts and every cycle (-v: the edges). Usage: python3 scripts/import-graph.py src [-v]"""
import os, re, sys
root = sys.argv[1]
mods = {}
for dp, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            rel = os.path.relpath(os.path.join(dp, f), root)[:-3].replace(os.sep, '::')
            if rel.endswith('::mod'): rel = rel[:-5]
            mods[rel] = os.path.join(dp, f)
def resolve(path):
    parts = path.split('::')
    for n in range(len(parts), 0, -1):
        cand = '::'.join(parts[:n])
        if cand in mods: return cand
    return None
edges = {}
for m, p in mods.items():
    if m in ('lib', 'main'): continue
    text = open(p).read()
    text = re.sub(r'#\[cfg\(test\)\]\s*mod tests \{.*', '', text, flags=re.S)
    text = re.sub(r'//.*', '', text)
    # expand `use crate::a::{b, c::d}` one level
    for um in re.finditer(r'crate::([a-z_:]+)(::\{([^}]*)\})?', text):
        base = um.group(1).rstrip(':')
        targets = [base]
        if um.group(3):
            targets = [base + '::' + x.strip().split('::')[0] for x in um.group(3).split(',') if x.strip()]
        for t in targets:
            r = resolve(t)
            if r and r != m and not m.startswith(r + '::') and not r.startswith(m + '::'):
                edges.setdefault(m, set()).add(r)
def cycles():
    found = set()
    def dfs(start, node, path):
        for n in edges.get(node, ()):
            if n == start:
                i = path.index(min(path)); found.add(tuple(path[i:] + path[:i]))
            elif n not in path and len(path) < 10:
                dfs(start, n, path + [n])
    for s in edges: dfs(s, s, [s])
    return found
if '-v' in sys.argv:
    for k in sorted(edges): print(f"{k} -> {', '.join(sorted(edges[k]))}")
cs = cycles()
print(f"{len(mods)} modules, {sum(len(v) for v in edges.values())} edges, cycles: {len(cs)}")
for c in sorted(cs): print("  " + " -> ".join(c + (c[0],)))
