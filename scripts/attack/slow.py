import socket, time, sys, threading, urllib.request
host, port = sys.argv[1], int(sys.argv[2])
mode = sys.argv[3]
def healthz():
    t = time.time()
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=10) as r:
            return r.status, round((time.time()-t)*1000, 1)
    except Exception as e:
        return repr(e)[:80], round((time.time()-t)*1000, 1)
if mode == 'headers':
    s = socket.create_connection((host, port)); t0 = time.time()
    s.sendall(b"GET /v1/status HTTP/1.1\r\n")
    i = 0
    try:
        while True:
            time.sleep(1); s.sendall(f"X-H{i}: a\r\n".encode()); i += 1
            s.settimeout(0.01)
            try:
                d = s.recv(1000)
                if not d: print(f"closed after {time.time()-t0:.1f}s, {i} lines"); break
                print(f"answer after {time.time()-t0:.1f}s: {d[:120]!r}"); break
            except socket.timeout: pass
            if i > 120: print("still open after 120 lines"); break
    except Exception as e:
        print(f"error after {time.time()-t0:.1f}s: {e!r}")
elif mode == 'body':
    s = socket.create_connection((host, port)); t0 = time.time()
    s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
    i = 0
    try:
        while True:
            time.sleep(1); s.sendall(b" "); i += 1
            s.settimeout(0.01)
            try:
                d = s.recv(1000)
                if not d: print(f"closed after {time.time()-t0:.1f}s"); break
                print(f"answer after {time.time()-t0:.1f}s: {d[:300]!r}"); break
            except socket.timeout: pass
            if i > 120: print("still open after 120 s"); break
    except Exception as e:
        print(f"error after {time.time()-t0:.1f}s: {e!r}")
elif mode == 'flood':
    n = int(sys.argv[4]); socks = []; fails = 0; t0 = time.time()
    for i in range(n):
        try:
            s = socket.socket(); s.setblocking(True); s.settimeout(2); s.connect((host, port))
            s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except Exception as e:
            fails += 1
        if i % 5000 == 4999: print(f"{i+1} opened ({fails} failed) in {time.time()-t0:.1f}s; healthz {healthz()}", flush=True)
    print(f"all opened: {len(socks)} ok, {fails} failed; healthz {healthz()}", flush=True)
    pid = sys.argv[5]
    def stat():
        import os
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        rss = [l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1]
        return fds, int(rss)//1024
    print("server fds, RSS MiB:", stat(), flush=True)
    # how many are still open after 15 s?
    time.sleep(15)
    alive = 0
    for s in socks:
        s.settimeout(0.001)
        try:
            d = s.recv(100)
            if d: alive += 0
        except socket.timeout: alive += 1
        except Exception: pass
    print(f"after 15s: {alive} still open; server fds, RSS MiB: {stat()}; healthz {healthz()}", flush=True)
    for s in socks: s.close()
    time.sleep(2)
    print(f"closed all: server fds, RSS: {stat()}; healthz {healthz()}")
