//! The capability commands as a user runs them: `wasmq alias set --config
//! --kv-store --env`, `wasmq alias secret set|list|delete` (the value from
//! stdin or `--value-file`, never shown) and `wasmq kv get|set|delete|list`,
//! each checked by what the plugins then see when dispatched.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{field, ok, ok_json, push, row, stderr, stdout, wasmq, wasmq_with};
use crate::server::{Options, TestApp, spawn_app};

const KEY_HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

async fn app() -> TestApp {
    spawn_app(Options {
        tweak: |s| s.secrets_key = Some(wasmq::config::Secret::new(KEY_HEX)),
        ..Options::default()
    })
    .await
}

fn hmac_hex(key: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn alias_settings_and_secrets_reach_the_plugins() {
    let app = app().await;
    let env = push(&app, "env-command", "env").await;
    let set = ok(&wasmq(
        &app,
        &[
            "alias",
            "set",
            "env",
            &env,
            "--config",
            "region=eu",
            "--kv-store",
            "state",
            "--env",
            "REGION=config:region",
            "--env",
            "TOKEN=secret:token",
        ],
    )
    .await);
    assert_eq!(
        field(&set, "settings"),
        "kv_store=state config:region=eu env:REGION=config:region env:TOKEN=secret:token"
    );
    let shown = ok_json(&wasmq(&app, &["alias", "show", "env", "--json"]).await);
    assert_eq!(shown["kv_store"], "state", "{shown}");

    // A secret from stdin (one trailing newline dropped) reaches the command's env.
    let out =
        wasmq_with(&app.url, &["alias", "secret", "set", "env", "token"], &[], Some("s3cr3t-from-stdin\n"))
            .await;
    assert_eq!(ok(&out), "set secret token of alias env\n");
    let result = ok_json(&wasmq(&app, &["dispatch", "env", "{}", "--wait"]).await);
    assert_eq!(result["env"], serde_json::json!({ "REGION": "eu", "TOKEN": "s3cr3t-from-stdin" }));

    // sign: the secret from stdin, then rotated from --value-file.
    push(&app, "sign", "signer").await;
    let out =
        wasmq_with(&app.url, &["alias", "secret", "set", "signer", "key"], &[], Some("first-key")).await;
    ok(&out);
    let signed = ok_json(&wasmq(&app, &["dispatch", "signer", r#"{"message":"hi"}"#, "--wait"]).await);
    assert_eq!(signed["signature"], hmac_hex("first-key", "hi"));
    let file = app.dir.path().join("key.txt");
    std::fs::write(&file, "second-key\n").unwrap();
    let file = file.to_string_lossy().into_owned();
    ok(&wasmq(&app, &["alias", "secret", "set", "signer", "key", "--value-file", &file]).await);
    let signed = ok_json(&wasmq(&app, &["dispatch", "signer", r#"{"message":"hi"}"#, "--wait"]).await);
    assert_eq!(signed["signature"], hmac_hex("second-key", "hi"));
    let missing =
        wasmq(&app, &["alias", "secret", "set", "signer", "key", "--value-file", "/nonexistent/k"]).await;
    assert_eq!(missing.status.code(), Some(1), "{}", stdout(&missing));
    assert!(stderr(&missing).contains("cannot read /nonexistent/k"), "{}", stderr(&missing));

    // list: keys only, in a table and as JSON.
    ok(&wasmq_with(&app.url, &["alias", "secret", "set", "signer", "other"], &[], Some("zzz-value")).await);
    let list = ok(&wasmq(&app, &["alias", "secret", "list", "signer"]).await);
    assert!(list.starts_with("KEY"), "{list}");
    assert_eq!(row(&list, "key").len(), 2, "{list}");
    row(&list, "other");
    let listed = ok_json(&wasmq(&app, &["alias", "secret", "list", "signer", "--json"]).await);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    for text in [list, listed.to_string()] {
        for value in ["first-key", "second-key", "zzz-value"] {
            assert!(!text.contains(value), "{value} is listed: {text}");
        }
    }

    // delete: gone from the list, and the plugin fails naming it.
    let deleted = ok(&wasmq(&app, &["alias", "secret", "delete", "signer", "key"]).await);
    assert_eq!(deleted, "deleted secret key of alias signer\n");
    let listed = ok_json(&wasmq(&app, &["alias", "secret", "list", "signer", "--json"]).await);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let failed = wasmq(&app, &["dispatch", "signer", r#"{"message":"hi"}"#, "--wait"]).await;
    assert_ne!(failed.status.code(), Some(0));
    assert!(stderr(&failed).contains("the alias has no secret \"key\""), "{}", stderr(&failed));
    let again = wasmq(&app, &["alias", "secret", "delete", "signer", "key"]).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("secret key of alias signer"), "{}", stderr(&again));
    app.stop().await;
}

#[tokio::test]
async fn kv_commands_see_what_the_jobs_wrote() {
    let app = app().await;
    let counter = push(&app, "counter", "count").await;
    ok(&wasmq(&app, &["alias", "set", "count", &counter, "--kv-store", "state"]).await);
    for n in 1..=3 {
        let result = ok_json(&wasmq(&app, &["dispatch", "count", "{}", "--wait"]).await);
        assert_eq!(result["value"], n);
    }
    assert_eq!(ok(&wasmq(&app, &["kv", "get", "state", "count"]).await), "3");
    // A value set here is what the next job increments.
    assert_eq!(ok(&wasmq(&app, &["kv", "set", "state", "count", "41"]).await), "set count in state\n");
    let result = ok_json(&wasmq(&app, &["dispatch", "count", "{}", "--wait"]).await);
    assert_eq!(result["value"], 42);

    // Bytes from a file come back as the same bytes.
    let file = app.dir.path().join("blob.bin");
    let bytes: Vec<u8> = vec![0, 159, 146, 150, 255, b'\n'];
    std::fs::write(&file, &bytes).unwrap();
    ok(&wasmq(&app, &["kv", "set", "state", "blob", "--file", &file.to_string_lossy()]).await);
    let got = wasmq(&app, &["kv", "get", "state", "blob"]).await;
    assert_eq!((got.status.code(), got.stdout), (Some(0), bytes));
    ok(&wasmq(&app, &["kv", "set", "state", "greeting", "hello"]).await);

    // list: byte order, a prefix, pages with their cursor.
    assert_eq!(ok(&wasmq(&app, &["kv", "list", "state"]).await), "blob\ncount\ngreeting\n");
    assert_eq!(ok(&wasmq(&app, &["kv", "list", "state", "--prefix", "g"]).await), "greeting\n");
    let page = wasmq(&app, &["kv", "list", "state", "--limit", "2"]).await;
    assert_eq!(ok(&page), "blob\ncount\n");
    assert!(stderr(&page).contains("more: --cursor count"), "{}", stderr(&page));
    let rest = ok(&wasmq(&app, &["kv", "list", "state", "--limit", "2", "--cursor", "count"]).await);
    assert_eq!(rest, "greeting\n");
    let json = ok_json(&wasmq(&app, &["kv", "list", "state", "--json"]).await);
    assert_eq!(json["keys"], serde_json::json!(["blob", "count", "greeting"]), "{json}");

    // delete, then each command on what is gone.
    assert_eq!(
        ok(&wasmq(&app, &["kv", "delete", "state", "greeting"]).await),
        "deleted greeting from state\n"
    );
    for args in [&["kv", "get", "state", "greeting"][..], &["kv", "delete", "state", "greeting"]] {
        let gone = wasmq(&app, args).await;
        assert_eq!(gone.status.code(), Some(1), "{args:?}");
        assert!(stderr(&gone).contains("key \"greeting\" not found"), "{args:?}: {}", stderr(&gone));
    }
    let none = wasmq(&app, &["kv", "list", "other"]).await;
    assert_eq!(none.status.code(), Some(1));
    assert!(stderr(&none).contains("key-value store other not found"), "{}", stderr(&none));
    // The command line refuses a set without a value.
    let bare = wasmq(&app, &["kv", "set", "state", "k"]).await;
    assert_eq!(bare.status.code(), Some(2), "{}", stderr(&bare));
    app.stop().await;
}
