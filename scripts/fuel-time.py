#!/usr/bin/env python3
"""How long 1e9 fuel takes: `wasmq run <fixture> --fuel 1000000000 --json` on the
infinite-loop (pure computation) and busy-spin (host calls) fixtures, wall time
(`duration_us`) and the process's CPU time (echo gives the start-up share).

    python3 scripts/fuel-time.py [path/to/wasmq] [plugins-dir]
"""
import json, os, resource, subprocess, sys, tempfile

target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "..", "target"))
B = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "debug", "wasmq")
P = sys.argv[2] if len(sys.argv) > 2 else os.path.join(target, "wasm-plugins", "out")
# A warm artifact cache (one unmeasured run per fixture), so no run pays for compiling.
CACHE = tempfile.mkdtemp(prefix="wasmq-fuel-time-")


def run(p, n, payload="{}"):
    """n runs of fixture p: (wall ms, process CPU ms, fuel used) each."""
    out=[]
    for i in range(n + 1):
        before=resource.getrusage(resource.RUSAGE_CHILDREN)
        r=subprocess.run([B,"run",f"{P}/{p}.wasm",payload,"--fuel","1000000000","--timeout","60s","--json","--cache-dir",CACHE],capture_output=True,text=True)
        after=resource.getrusage(resource.RUSAGE_CHILDREN)
        o=json.loads(r.stdout)
        cpu=(after.ru_utime-before.ru_utime)+(after.ru_stime-before.ru_stime)
        if i > 0:
            out.append((o["duration_us"]/1000, cpu*1000, o["fuel_used"]))
    return out
for p,n in [("echo",5),("infinite-loop",10),("busy-spin",3)]:
    rs=run(p,n)
    rs.sort()
    print(p, "wall_ms min/median", round(rs[0][0],1), round(rs[len(rs)//2][0],1), "| process cpu_ms min/median", round(min(r[1] for r in rs),1), round(sorted(r[1] for r in rs)[len(rs)//2],1), "| fuel", rs[0][2])
