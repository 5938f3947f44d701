//! # wasmq-plugin: write wasmq job plugins in Rust
//!
//! A plugin is one plain function over serde types plus one macro line:
//!
//! ```ignore
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Input { name: String }
//!
//! #[derive(Serialize)]
//! struct Output { greeting: String }
//!
//! fn run(input: Input) -> Result<Output, wasmq_plugin::Error> {
//!     wasmq_plugin::progress(50, "thinking");
//!     Ok(Output { greeting: format!("hello, {}", input.name) })
//! }
//!
//! wasmq_plugin::plugin!(run);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` (crate type
//! `cdylib`); the result is a component of world `wasmq:plugin/job`, contract
//! `wasmq:plugin@0.2.0` (`wit/plugin.wit`). Servers keep running plugins built
//! against 0.1.0 too.
//!
//! A plugin reads its alias's configuration and secrets and keeps state
//! between runs with one-liners (granted per alias, nothing by default):
//!
//! ```ignore
//! let endpoint = wasmq_plugin::config::get("endpoint");      // Option<String>
//! let key = wasmq_plugin::secret::require("key")?;            // the secret, or a job error
//! let runs = wasmq_plugin::kv::increment("runs", 1)?;         // atomic across runs and nodes
//! wasmq_plugin::kv::set("last", b"done")?;
//! ```
//!
//! The SDK decodes the payload (a payload that does not fit the input type is a
//! non-retryable error naming the field, e.g. `invalid payload at "box.width":
//! invalid type: string "x", expected u32`), encodes the result, and turns the
//! function's [`Error`] into the job's error.
//!
//! Outbound HTTP is one line too (`wasmq_plugin::http::get(url)?`, see
//! [`http`]); the server allows only the hosts the plugin's alias lists.

mod capabilities;
mod error;
mod host;
pub mod http;

pub use capabilities::{CapabilityError, config, kv, secret};
pub use error::Error;
pub use host::{JobInfo, Level, job_info, log, progress};

/// Bindings generated from `wit/plugin.wit` (contract 0.2.0). Public so that [`plugin!`] can
/// name them from the plugin's crate; plugin authors do not need them.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/plugin.wit",
        world: "job",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "wasmq_plugin::bindings",
    });
}

/// Exports a function `fn(I) -> Result<O, E>` as the plugin's `run`, where `I`
/// is `Deserialize`, `O` is `Serialize` and `E: Into<wasmq_plugin::Error>`.
#[macro_export]
macro_rules! plugin {
    ($run:path) => {
        #[doc(hidden)]
        pub struct __WasmqPlugin;

        impl $crate::bindings::Guest for __WasmqPlugin {
            fn run(
                input: ::std::string::String,
            ) -> ::core::result::Result<::std::string::String, $crate::bindings::JobError> {
                $crate::__private::call(&input, $run)
            }
        }

        $crate::bindings::export!(__WasmqPlugin with_types_in $crate::bindings);
    };
}

#[doc(hidden)]
pub mod __private {
    use crate::Error;
    use crate::bindings::JobError;
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    /// Decodes the payload, runs the plugin function and encodes its answer.
    pub fn call<I, O, E>(input: &str, run: fn(I) -> Result<O, E>) -> Result<String, JobError>
    where
        I: DeserializeOwned,
        O: Serialize,
        E: Into<Error>,
    {
        let input = decode::<I>(input).map_err(JobError::from)?;
        let output = run(input).map_err(|e| JobError::from(e.into()))?;
        serde_json::to_string(&output)
            .map_err(|e| JobError::from(Error::new(format!("could not encode the result as JSON: {e}"))))
    }

    fn decode<I: DeserializeOwned>(input: &str) -> Result<I, Error> {
        let mut de = serde_json::Deserializer::from_str(input);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                Error::new(format!("invalid payload: {inner}"))
            } else {
                Error::new(format!("invalid payload at \"{path}\": {inner}"))
            }
        })
    }

    impl From<Error> for JobError {
        fn from(e: Error) -> Self {
            JobError { retryable: e.is_retryable(), message: e.into_message() }
        }
    }
}
