import socket, time, sys, selectors
host, port, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
socks = []; fails = 0; t0 = time.time()
for i in range(n):
    s = socket.socket(); s.setblocking(False)
    try: s.connect((host, port))
    except BlockingIOError: pass
    except OSError as e: fails += 1; s.close(); continue
    socks.append(s)
time.sleep(0.5)
sent = 0
for s in socks:
    try: s.send(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n"); sent += 1
    except OSError: pass
print(f"{len(socks)} connected, {sent} half-sent, {fails} failed in {time.time()-t0:.1f}s", flush=True)
time.sleep(hold)
answered = {}
for s in socks:
    try:
        d = s.recv(200)
        k = d.split(b"\r\n")[0].decode() if d else "closed"
    except BlockingIOError: k = "open"
    except OSError as e: k = type(e).__name__
    answered[k] = answered.get(k, 0) + 1
print(f"after {hold}s: {answered}", flush=True)
