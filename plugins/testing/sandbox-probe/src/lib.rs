//! Test fixture: looks for everything a sandboxed plugin must not have, and
//! reports what it found. Every probe must fail inside the plugin without the run
//! failing: environment variables, arguments, files, directories and sockets.

use serde_json::{Value, json};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};

fn outcome<T>(r: std::io::Result<T>) -> Value {
    match r {
        Ok(_) => json!({ "ok": true }),
        Err(e) => json!({ "ok": false, "error": e.to_string() }),
    }
}

fn run(_input: Value) -> Result<Value, wasmq_plugin::Error> {
    let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    let args: Vec<String> = std::env::args().collect();
    let files = json!({
        "/etc/passwd": outcome(std::fs::read("/etc/passwd")),
        "/": outcome(std::fs::read_dir("/")),
        ".": outcome(std::fs::read_dir(".")),
        "write /tmp/x": outcome(std::fs::write("/tmp/x", b"x")),
    });
    let sockets = json!({
        "tcp 127.0.0.1:5432": outcome(TcpStream::connect("127.0.0.1:5432")),
        "udp bind": outcome(UdpSocket::bind("127.0.0.1:0")),
        "lookup localhost": outcome("localhost:80".to_socket_addrs()),
    });
    Ok(json!({ "env": env, "args": args, "files": files, "sockets": sockets }))
}

wasmq_plugin::plugin!(run);
