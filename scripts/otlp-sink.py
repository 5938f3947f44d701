#!/usr/bin/env python3
"""A minimal OTLP/HTTP trace receiver for checking wasmq's export by hand with
the OpenTelemetry project's own protobuf definitions (PyPI `opentelemetry-proto`):

    python3 -m venv /tmp/otel && /tmp/otel/bin/pip install opentelemetry-proto
    /tmp/otel/bin/python scripts/otlp-sink.py 4318 &
    wasmq serve --otlp-endpoint http://127.0.0.1:4318

Prints one line per span received: trace, span, parent, kind, name, attributes.
"""
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for rs in request.resource_spans:
            node = {a.key: value(a.value) for a in rs.resource.attributes}.get("service.instance.id")
            for ss in rs.scope_spans:
                for s in ss.spans:
                    attrs = {a.key: value(a.value) for a in s.attributes}
                    ms = (s.end_time_unix_nano - s.start_time_unix_nano) / 1e6
                    print(f"{s.trace_id.hex()} {s.span_id.hex()} parent={s.parent_span_id.hex() or '-'} "
                          f"kind={s.kind} status={s.status.code} {s.name} {ms:.3f}ms node={node} {attrs}",
                          flush=True)
        out = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 4318), Sink).serve_forever()
