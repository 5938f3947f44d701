//! What a module may import and must export, checked when it is loaded, with an
//! error that names the reason.
//!
//! Toolchains import more WASI than a plugin uses, so every standard WASI p2 and
//! p1 interface is linked and access is denied at run time instead (no preopens,
//! no environment, every socket refused; `wasi:http` requests refused unless the
//! job's alias grants hosts, see `sandbox::http`). Anything outside WASI and the
//! `wasmq:plugin` host interface is refused here, before any code runs.

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, ExternType, Module};
use wasmtime_wasi::p2::bindings::CommandPre;

use super::host::{self, JobPre};
use super::plugin::Pre;
use super::state::{ComponentState, CoreState};

/// The packages whose interfaces a component may import.
const ALLOWED_PACKAGES: [&str; 2] = ["wasi:", "wasmq:plugin/"];
/// The only core module a p1 program may import from.
const WASI_P1_MODULE: &str = "wasi_snapshot_preview1";

/// What kind of bytes these are, from the header alone.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Binary {
    Component,
    CoreModule,
}

pub(crate) fn sniff(bytes: &[u8]) -> Result<Binary, String> {
    if wasmparser::Parser::is_component(bytes) {
        Ok(Binary::Component)
    } else if wasmparser::Parser::is_core_wasm(bytes) {
        Ok(Binary::CoreModule)
    } else if bytes.starts_with(b"\0asm") {
        Err("unsupported WebAssembly binary version".into())
    } else {
        Err("not a WebAssembly module or component (bad magic number)".into())
    }
}

pub(crate) fn component(
    engine: &Engine,
    linker: &Linker<ComponentState>,
    component: &Component,
) -> Result<Pre, String> {
    let ty = component.component_type();
    let mut imports_v0_1 = false;
    for (name, _) in ty.imports(engine) {
        if !ALLOWED_PACKAGES.iter().any(|p| name.starts_with(p)) {
            return Err(format!("unsupported import \"{name}\""));
        }
        imports_v0_1 |= name.starts_with("wasmq:plugin/") && name.ends_with("@0.1.0");
    }
    let pre = linker.instantiate_pre(component).map_err(|e| {
        // The linker names the first import it cannot satisfy (e.g. a WASI
        // version or interface wasmq does not provide).
        format!("unsupported import: {}", error_chain(&e))
    })?;
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    if exports.iter().any(|n| n == "run") {
        // `run` has the same type in every version, so the version is told by
        // the host interface the component imports (none: the newest).
        let (pre, world) = if imports_v0_1 {
            (host::v0_1::bindings::JobPre::new(pre).map(JobPre::V0_1), "wasmq:plugin/job@0.1.0")
        } else {
            (host::v0_2::bindings::JobPre::new(pre).map(JobPre::V0_2), "wasmq:plugin/job@0.2.0")
        };
        return pre
            .map(Pre::Job)
            .map_err(|e| format!("export \"run\" does not match world {world}: {}", error_chain(&e)));
    }
    if exports.iter().any(|n| n.starts_with("wasi:cli/run@0.2")) {
        return CommandPre::new(pre)
            .map(Pre::Command)
            .map_err(|e| format!("export \"wasi:cli/run\" does not match WASI 0.2: {}", error_chain(&e)));
    }
    Err(format!(
        "component exports neither \"run\" (world wasmq:plugin/job, contract {}) nor \"wasi:cli/run\" \
         (a WASI command); it exports [{}]",
        host::CONTRACTS.join(" or "),
        exports.join(", ")
    ))
}

pub(crate) fn core_module(linker: &wasmtime::Linker<CoreState>, module: &Module) -> Result<Pre, String> {
    for import in module.imports() {
        if import.module() != WASI_P1_MODULE {
            return Err(format!("unsupported import \"{}\".\"{}\"", import.module(), import.name()));
        }
    }
    let has_start = module.exports().any(|e| {
        e.name() == "_start"
            && matches!(e.ty(), ExternType::Func(f) if f.params().len() == 0 && f.results().len() == 0)
    });
    if !has_start {
        return Err("core module has no \"_start\" function: only WASI commands are supported as core \
                    modules (build a component of world wasmq:plugin/job instead)"
            .into());
    }
    linker
        .instantiate_pre(module)
        .map(Pre::CoreCommand)
        .map_err(|e| format!("unsupported import: {}", error_chain(&e)))
}

/// `outer: inner: innermost`, the way anyhow's `{:#}` prints.
pub(crate) fn error_chain(e: &wasmtime::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.last().is_some_and(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}
