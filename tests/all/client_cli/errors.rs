//! What a user sees when the server refuses a command: the HTTP status, the
//! server's error code and its message, on one line.

use std::io::{Read, Write};

use super::{field, ok, push, stderr, stdout, wasmq, wasmq_with};
use crate::server::{Options, spawn_app};

#[tokio::test]
async fn an_api_error_shows_its_status_code_and_message() {
    let app = spawn_app(Options::default()).await;
    push(&app, "echo", "echo").await;

    // The code tells two 409s apart: a reused idempotency key is not a conflict
    // of another kind.
    let first = ok(&wasmq(&app, &["dispatch", "echo", "[1]", "--idempotency-key", "k-1"]).await);
    let out = wasmq(&app, &["dispatch", "echo", "[2]", "--idempotency-key", "k-1"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    assert!(err.starts_with("error (409 idempotency_conflict): "), "{err}");
    assert!(err.contains("k-1") && err.ends_with("same alias, payload and options\n"), "{err}");
    // The first job is untouched and still the key's.
    let again = ok(&wasmq(&app, &["dispatch", "echo", "[1]", "--idempotency-key", "k-1"]).await);
    assert_eq!(field(&again, "id"), field(&first, "id"));

    // Ranges are the server's: the flags pass values on and its 400 names the field.
    for (args, expected) in [
        (
            vec!["dispatch", "echo", "{}", "--max-attempts", "0"],
            "error (400 invalid_field): max_attempts must be between 1 and 100, got 0\n",
        ),
        (
            vec!["dispatch", "echo", "{}", "--priority", "1001"],
            "error (400 invalid_field): priority must be between 0 and 1000, got 1001\n",
        ),
        (
            vec![
                "alias",
                "set",
                "echo",
                "blake3:0000000000000000000000000000000000000000000000000000000000000000",
            ],
            "error (404 not_found): module blake3:0000000000000000000000000000000000000000000000000000000000000000 not found\n",
        ),
    ] {
        let out = wasmq(&app, &args).await;
        assert_eq!((out.status.code(), stderr(&out).as_str()), (Some(1), expected), "{args:?}");
    }
    let echo = field(&ok(&wasmq(&app, &["alias", "show", "echo"]).await), "module");
    let out = wasmq(&app, &["alias", "set", "echo", &echo, "--priority", "1001"]).await;
    assert_eq!(stderr(&out), "error (400 invalid_field): priority must be between 0 and 1000, got 1001\n");
    let out = wasmq(&app, &["alias", "set", "echo", &echo, "--max-attempts", "101"]).await;
    assert_eq!(stderr(&out), "error (400 invalid_field): max_attempts must be between 1 and 100, got 101\n");
    // None of the refused requests changed the alias.
    assert_eq!(field(&ok(&wasmq(&app, &["alias", "show", "echo"]).await), "version"), "1");
    app.stop().await;
}

#[tokio::test]
async fn an_error_without_the_api_shape_shows_the_status_reason() {
    // Something in front of the server (a proxy) answers 502 in plain text.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let proxy = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut request = [0u8; 4096];
        let _ = conn.read(&mut request).unwrap();
        let body = "upstream unreachable";
        let answer = format!(
            "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(answer.as_bytes()).unwrap();
    });
    let out = wasmq_with(&url, &["status"], &[], None).await;
    proxy.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "error (502 Bad Gateway): upstream unreachable\n");
}
