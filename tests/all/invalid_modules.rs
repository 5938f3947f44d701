//! Modules wasmq cannot run are refused at load time with a reason.

use crate::support::{engine, plugin_bytes};
use wasmq::sandbox::LoadError;

async fn reason(bytes: Vec<u8>) -> String {
    match engine().load(bytes).await {
        Err(LoadError::InvalidModule(reason)) => reason,
        Err(other) => panic!("expected InvalidModule, got {other}"),
        Ok(plugin) => panic!("accepted {plugin:?}"),
    }
}

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap()
}

#[tokio::test]
async fn garbage_is_not_wasm() {
    assert_eq!(
        reason(b"#!/bin/sh\nrm -rf /\n".to_vec()).await,
        "not a WebAssembly module or component (bad magic number)"
    );
    assert_eq!(reason(Vec::new()).await, "not a WebAssembly module or component (bad magic number)");
}

#[tokio::test]
async fn a_truncated_module_names_the_parse_error() {
    let mut bytes = plugin_bytes("echo");
    bytes.truncate(bytes.len() / 2);
    let reason = reason(bytes).await;
    assert!(reason.starts_with("failed to parse WebAssembly module"), "{reason}");
}

#[tokio::test]
async fn a_core_module_with_foreign_imports_is_refused() {
    let module = wat(r#"(module
        (import "env" "system" (func (param i32) (result i32)))
        (func (export "_start")))"#);
    assert_eq!(reason(module).await, r#"unsupported import "env"."system""#);
}

#[tokio::test]
async fn a_core_module_with_an_unknown_wasi_function_is_refused() {
    let module = wat(r#"(module
        (import "wasi_snapshot_preview1" "launch_missiles" (func))
        (func (export "_start")))"#);
    let reason = reason(module).await;
    assert!(reason.starts_with("unsupported import") && reason.contains("launch_missiles"), "{reason}");
}

#[tokio::test]
async fn a_core_module_without_start_is_refused() {
    let reason = reason(wat(r#"(module (func (export "main")))"#)).await;
    assert!(reason.starts_with(r#"core module has no "_start" function"#), "{reason}");
}

#[tokio::test]
async fn a_component_with_foreign_imports_is_refused() {
    let component = wat(r#"(component
        (import "evil:host/shell" (instance (export "exec" (func (param "cmd" string)))))
    )"#);
    assert_eq!(reason(component).await, r#"unsupported import "evil:host/shell""#);
}

#[tokio::test]
async fn a_component_of_another_world_is_refused() {
    let component = wat(r#"(component
        (core module $m (func (export "f") (result i32) i32.const 1))
        (core instance $i (instantiate $m))
        (func (export "answer") (result u32) (canon lift (core func $i "f")))
    )"#);
    let reason = reason(component).await;
    assert!(reason.starts_with(r#"component exports neither "run""#), "{reason}");
    assert!(reason.contains("[answer]"), "{reason}");
}

#[tokio::test]
async fn a_run_export_of_the_wrong_type_is_refused() {
    let component = wat(r#"(component
        (core module $m (func (export "f") (result i32) i32.const 1))
        (core instance $i (instantiate $m))
        (func (export "run") (result u32) (canon lift (core func $i "f")))
    )"#);
    let reason = reason(component).await;
    assert!(reason.starts_with(r#"export "run" does not match world wasmq:plugin/job@0.2.0"#), "{reason}");
}
