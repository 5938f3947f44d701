import json, sys, urllib.request, urllib.error
U = sys.argv[1]
def req(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(U + path, data=data, method=method)
    if data is not None: r.add_header('content-type', 'application/json')
    try:
        with urllib.request.urlopen(r, timeout=30) as resp: return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e: return e.code, e.read().decode()
hosts = ["127.0.0.1","127.1","127.0.1","2130706433","0x7f000001","0x7f.0.0.1","0177.0.0.1","017700000001","0","0.0.0.0","127.0.0.1.","[::1]","[::]","[::ffff:127.0.0.1]","[::ffff:7f00:1]","[0:0:0:0:0:ffff:127.0.0.1]","[::127.0.0.1]","[64:ff9b::127.0.0.1]","[2002:7f00:1::]","[fe80::1]","[fc00::1]","[fd00::1]","[ff02::1]","[100::1]","[2001:db8::1]","localhost","LOCALHOST","localhost.","foo.localhost","ip6-localhost","ip6-loopback","169.254.169.254","169.254.169.254.","0xa9fea9fe","2852039166","0251.0376.0251.0376","10.0.0.1","172.16.0.1","192.168.1.1","100.64.0.1","192.0.2.1","198.51.100.1","203.0.113.1","224.0.0.1","255.255.255.255","240.0.0.1","198.18.0.1","192.0.0.1","[::ffff:169.254.169.254]","[::ffff:a9fe:a9fe]","127.0.0.1%2e","%31%32%37.0.0.1","１２７.０.０.１","metadata.google.internal","[fe80::1%25lo]","0x7f000001.","127.000.000.001","[0::1]","[::0:1]","[::1%25eth0]","[fec0::1]"]
accepted = []
for h in hosts:
    for scheme in ["http"]:
        url = f"{scheme}://{h}:9/hook"
        st, b = req('POST', '/v1/jobs', {"alias":"echo","payload":{},"callback":{"url":url}})
        if st in (200,201,202): accepted.append((url, json.loads(b)['id']))
        print(f"{url}: {st} {b[:130] if st>=400 else 'ACCEPTED'}")
# other url forms
for url in ["http://user:pw@127.0.0.1/", "http://example.com@127.0.0.1/", "http://127.0.0.1#@example.com/", "ftp://example.com/", "file:///etc/passwd", "http://", "http:///x", "https://[::1]:443/", "http://example.com:0/", "http://example.com:99999/", "HTTP://127.0.0.1/", "http://127.0.0.1\t/", "http://exa mple.com/", "http://example.com/\r\nX: y", "gopher://127.0.0.1/", "http://[::ffff:127.0.0.1/"]:
    st, b = req('POST', '/v1/jobs', {"alias":"echo","payload":{},"callback":{"url":url}})
    if st in (200,201,202): accepted.append((url, json.loads(b)['id']))
    print(f"{url!r}: {st} {b[:130] if st>=400 else 'ACCEPTED'}")
for hdr in [{"bad header":"x"}, {"X-A":"a\r\nb"}, {"X-A":"a\nb"}, {"X-A":"a\x00b"}, {"":"x"}, {"Host":"evil"}, {"Content-Length":"0"}, {"Transfer-Encoding":"chunked"}, {"X-Wasmq-Signature":"forged"}, {"Authorization":"Bearer x"}, {"X-A":"é"}, {"X-"+"a"*10000:"x"}, {"X-A":"v"*100000}, {f"X-{i}":"x" for i in range(1000)}, {"Connection":"close"}, {"Content-Type":"text/plain"}]:
    st, b = req('POST', '/v1/jobs', {"alias":"echo","payload":{},"callback":{"url":"http://example.com/hook","headers":hdr}})
    print(f"headers {json.dumps(hdr)[:60]}: {st} {b[:150] if st>=400 else 'ACCEPTED'}")
# batch callbacks
for url in ["http://127.0.0.1/", "http://[::1]/", "http://2130706433/", "http://localhost/"]:
    st, b = req('POST', '/v1/batches', {"jobs":[{"alias":"echo","payload":{}}], "callback":{"url":url}})
    print(f"batch {url}: {st} {b[:130]}")
st, b = req('POST', '/v1/batches', {"jobs":[{"alias":"echo","payload":{}}], "callback":{"url":"http://example.com/","headers":{"bad header":"x"}}})
print(f"batch bad header: {st} {b[:130]}")
# dispatch query
import urllib.parse
for url in ["http://127.0.0.1/", "http://0x7f000001/", "http://[::1]/"]:
    st, b = req('POST', '/v1/dispatch/echo?callback_url=' + urllib.parse.quote(url) + '&callback_secret=s3cr3t', {})
    print(f"dispatch {url}: {st} {b[:130]}")
json.dump(accepted, open('/tmp/rt/accepted.json','w'))
print("ACCEPTED", accepted)
