import sys, json, uuid, time, urllib.request, concurrent.futures as cf
U, pid = sys.argv[1], sys.argv[2]
def rss(): return int([l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1])//1024
def get(p):
    try:
        with urllib.request.urlopen(U+p, timeout=60) as r: return r.status, r.read()
    except urllib.error.HTTPError as e: return e.code, e.read()
def post(p, b):
    r = urllib.request.Request(U+p, data=json.dumps(b).encode(), method='POST'); r.add_header('content-type','application/json')
    with urllib.request.urlopen(r, timeout=60) as resp: return json.loads(resp.read())
fin = post('/v1/jobs', {"alias":"echo","payload":{}})['id']; get(f'/v1/jobs/{fin}/wait')
print("RSS before waits", rss())
t=time.time()
with cf.ThreadPoolExecutor(32) as ex:
    res = list(ex.map(lambda i: get(f'/v1/jobs/{uuid.uuid4()}/wait')[0] if i%2 else get(f'/v1/jobs/{fin}/wait')[0], range(4000)))
print("4000 waits", {s: res.count(s) for s in set(res)}, f"{time.time()-t:.1f}s", "RSS after", rss())
print("status watchers", json.loads(get('/v1/status')[1]).get('watchers'))
with cf.ThreadPoolExecutor(32) as ex:
    res = list(ex.map(lambda i: get(f'/v1/jobs/{uuid.uuid4()}/events')[0], range(2000)))
print("2000 streams on unknown ids", {s: res.count(s) for s in set(res)}, "RSS", rss())
# big payloads
pad = "p" * (15 << 20)
t=time.time(); big = [post('/v1/jobs', {"alias":"echo","payload":{"pad":pad}})['id'] for _ in range(12)]
print(f"12 x 15 MiB jobs posted in {time.time()-t:.1f}s RSS", rss())
for i in big: get(f'/v1/jobs/{i}/wait')
print("RSS after they ran", rss())
t=time.time(); st, body = get('/v1/jobs?limit=1000'); page = json.loads(body)
print(f"list limit=1000: {st} {len(body)/1e6:.1f} MB, {len(page['jobs'])} jobs, next_cursor {bool(page['next_cursor'])}, {time.time()-t:.2f}s, RSS {rss()}")
import threading
def stream(i):
    with urllib.request.urlopen(U+f'/v1/jobs/{i}/events', timeout=60) as r: return len(r.read())
t=time.time()
with cf.ThreadPoolExecutor(20) as ex: sizes = list(ex.map(stream, [big[0]]*20))
print(f"20 streams on a finished 15 MiB job: {sizes[0]/1e6:.1f} MB each, {time.time()-t:.1f}s, RSS {rss()}")
