import json, sys, urllib.request, urllib.error, itertools
U = sys.argv[1]
def req(method, path, body=None, raw=None, ctype='application/json'):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    r = urllib.request.Request(U + path, data=data, method=method)
    if data is not None: r.add_header('content-type', ctype)
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except Exception as e:
        return 'EXC', repr(e)
bad = [300000000000000, 2**63-1, 2**63, 2**64-1, 2**64, 10**30, -1, -2**63, 1.5, 1e300, "5", None, True, [], {}, 0]
fields = ['priority','delay_ms','max_attempts','timeout_ms','fuel','memory_mb']
issues = []
def check(label, st, body):
    ok = st in (200,201,202,400,404,409,422,413,429,503)
    if isinstance(st, int) and st >= 400:
        try:
            j = json.loads(body); assert 'error' in j and 'code' in j['error'] and 'message' in j['error']
        except Exception:
            ok = False
    if not ok or st == 500 or st == 'EXC':
        issues.append((label, st, body))
    return st
ids = []
for f in fields:
    for v in bad:
        st, b = req('POST', '/v1/jobs', {"alias":"echo","payload":{}, f: v})
        check(f"jobs {f}={v!r}", st, b)
        if st in (201, 202): ids.append((f, v, json.loads(b)['id']))
        print(f"jobs {f}={v!r}: {st} {b[:140]}")
        qs = f"{f}={json.dumps(v) if not isinstance(v,str) else v}"
        st, b = req('POST', f'/v1/dispatch/echo?{qs}', {})
        check(f"dispatch {qs}", st, b)
        if st in (201, 202): ids.append((f, v, json.loads(b)['id']))
        print(f"dispatch {qs}: {st} {b[:140]}")
for v in ["9999-12-31T23:59:59Z", "+275760-09-13T00:00:00Z", "1970-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "-0001-01-01T00:00:00Z", "2026-13-45T00:00:00Z", "2026-01-01T00:00:00+23:59", "2026-01-01T00:00:00.999999999999Z", 12345, "", "x"*10000]:
    st, b = req('POST', '/v1/jobs', {"alias":"echo","payload":{}, "run_at": v})
    check(f"run_at {v!r:.40}", st, b)
    if st in (201, 202): ids.append(('run_at', v, json.loads(b)['id']))
    print(f"run_at={v!r:.40}: {st} {b[:160]}")
for q in ["limit=0","limit=-1","limit=1001","limit=4294967296","limit=1.5","limit=abc","cursor=zzz","cursor=" + "A"*5000, "cursor=eyJ4IjoxfQ", "status=bogus", "order=up", "limit=18446744073709551616"]:
    st, b = req('GET', f'/v1/jobs?{q}'); check(f"list {q}", st, b); print(f"list {q}: {st} {b[:140]}")
for q in ["timeout_ms=-1","timeout_ms=300001","timeout_ms=18446744073709551615","timeout_ms=18446744073709551616","timeout_ms=1e3","timeout_ms=x"]:
    st, b = req('GET', f'/v1/jobs/nope/wait?{q}'); check(f"wait {q}", st, b); print(f"wait unknown {q}: {st} {b[:140]}")
# aliases
for body in [{"module":"blake3:"+"0"*64, "priority": 2**63}, {"module":"x", "defaults":{"fuel":2**64}}, {"module": 5}, {"module":"blake3:42d792e1d438cdcd1b8bbf3ce9b50d8d1501b017607213c4311eee82a14ac722", "priority": 10**20}, {"module":"blake3:42d792e1d438cdcd1b8bbf3ce9b50d8d1501b017607213c4311eee82a14ac722", "max_attempts": -1}, {"module":"blake3:42d792e1d438cdcd1b8bbf3ce9b50d8d1501b017607213c4311eee82a14ac722", "timeout_ms": 2**63}, {"module":"blake3:42d792e1d438cdcd1b8bbf3ce9b50d8d1501b017607213c4311eee82a14ac722", "fuel": 2**64-1}, {"module":"blake3:42d792e1d438cdcd1b8bbf3ce9b50d8d1501b017607213c4311eee82a14ac722", "memory_mb": 2**40}]:
    st, b = req('PUT', '/v1/aliases/atk', body); check(f"alias {body}", st, b); print(f"alias {json.dumps(body)[:100]}: {st} {b[:160]}")
for q in ["version=-1", "version=18446744073709551616", "to=0", "to=-5", "version=99999999999"]:
    st, b = req('POST', f'/v1/aliases/atk/rollback?{q}', {}); check(f"rollback {q}", st, b); print(f"rollback {q}: {st} {b[:140]}")
    st, b = req('POST', f'/v1/aliases/atk/rollback', {"version": 2**64}); check(f"rollback body", st, b); print(f"rollback body 2^64: {st} {b[:140]}")
# batches
for jobs in [[{"alias":"echo","payload":{},"delay_ms":2**63}], [{"alias":"echo","payload":{},"fuel":-1}], [], [{"alias":"echo","payload":{}}]*10001]:
    st, b = req('POST', '/v1/batches', {"jobs": jobs}); check("batch", st, b); print(f"batch n={len(jobs)} {json.dumps(jobs[:1])[:80]}: {st} {b[:140]}")
print("ACCEPTED:", [(f, v) for f, v, _ in ids][:80])
# now render every accepted job
for f, v, i in ids:
    for p in [f'/v1/jobs/{i}', f'/v1/jobs/{i}/wait?timeout_ms=0']:
        st, b = req('GET', p); check(f"get {f}={v!r} {p}", st, b)
st, b = req('GET', '/v1/jobs?limit=1000'); check("list after", st, b); print("list after:", st, len(b))
st, b = req('GET', '/healthz'); print("healthz", st, b)
print("ISSUES:"); [print(" ", x) for x in issues]
