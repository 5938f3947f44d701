//! `sign`: the HMAC-SHA256 of the payload's `message`, keyed with the alias's
//! secret `key`, answered as lowercase hex. The secret never leaves the
//! plugin: it is not in the result, a log line or progress.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

#[derive(Deserialize)]
struct Input {
    message: String,
}

#[derive(Serialize)]
struct Signature {
    algorithm: &'static str,
    signature: String,
}

fn run(input: Input) -> Result<Signature, wasmq_plugin::Error> {
    let key = wasmq_plugin::secret::require("key")?;
    // HMAC takes keys of any length (long ones are hashed first), so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length");
    mac.update(input.message.as_bytes());
    let signature = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Signature { algorithm: "hmac-sha256", signature })
}

wasmq_plugin::plugin!(run);
