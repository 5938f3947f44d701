//! `wasmq secret generate`: makes a signing secret for signed requests and
//! writes it to `./.env` as `WASMQ_SECRET=<value>`, which `wasmq serve` reads
//! at start (see [`super::dotenv`]). Meant for development and one-machine
//! installs; refused when `WASMQ_ENV=production`, where the secret belongs in
//! the deployment's secret store, not a file in the working directory.

use clap::{Args, Subcommand};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Shortest secret, in hex characters (128 bits).
pub const MIN_LENGTH: u16 = 32;
/// Longest secret, in hex characters.
pub const MAX_LENGTH: u16 = 1024;
/// The variable the secret is written as.
const VAR: &str = "WASMQ_SECRET";

/// `wasmq secret ...`.
#[derive(Debug, Args)]
pub struct SecretArgs {
    #[command(subcommand)]
    command: SecretCommand,
}

#[derive(Debug, Subcommand)]
enum SecretCommand {
    /// Generate a signing secret (WASMQ_SECRET) and write it to ./.env.
    ///
    /// The secret is the signing key `default` of signed requests (admin of the
    /// `default` tenant): `wasmq serve` reads ./.env at start, if present,
    /// without overriding variables already set. Other lines of .env are
    /// kept; the file is written with mode 0600. Refused when WASMQ_ENV=production.
    Generate(GenerateArgs),
}

/// `wasmq secret generate` options.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Length of the secret in hex characters (4 random bits each, from the
    /// OS CSPRNG): 32 to 1024; the default 64 is 256 bits.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(i64::from(MIN_LENGTH)..=i64::from(MAX_LENGTH)))]
    pub length: u16,
    /// Also print the secret on stdout (by default it is only written to .env).
    #[arg(long)]
    pub show: bool,
    /// Refuse (exit 1) if .env holds a WASMQ_SECRET already, instead of replacing it.
    #[arg(long)]
    pub no_replace: bool,
}

/// Why `secret generate` refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// `WASMQ_ENV=production`.
    #[error(
        "refusing to run with WASMQ_ENV=production: generate the secret in your secret manager and set {VAR} there"
    )]
    Production,
    /// `--no-replace` and the file has one.
    #[error("{0} already sets {VAR}; not replacing it (--no-replace)")]
    Exists(String),
    /// Reading or writing the file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
}

pub(super) fn main(args: SecretArgs) -> ExitCode {
    let SecretCommand::Generate(args) = args.command;
    let env = std::env::var("WASMQ_ENV").ok();
    match generate(&args, Path::new(".env"), env.as_deref()) {
        Ok(secret) => {
            eprintln!(
                "wrote {VAR} ({} hex characters) to ./.env (mode 0600); `wasmq serve` reads it from there",
                secret.len()
            );
            if args.show {
                println!("{secret}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Makes a secret and writes it into the env file at `path`; returns it.
pub fn generate(args: &GenerateArgs, path: &Path, wasmq_env: Option<&str>) -> Result<String, SecretError> {
    if wasmq_env.is_some_and(|e| e.trim().eq_ignore_ascii_case("production")) {
        return Err(SecretError::Production);
    }
    let io = |source| SecretError::Io { path: path.display().to_string(), source };
    let current = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(e)),
    };
    if args.no_replace && current.lines().any(sets_var) {
        return Err(SecretError::Exists(path.display().to_string()));
    }
    let secret = random_hex(usize::from(args.length.clamp(MIN_LENGTH, MAX_LENGTH)));
    write_private(path, &with_secret(&current, &secret)).map_err(io)?;
    Ok(secret)
}

/// Whether a line of an env file sets the variable (`WASMQ_SECRET=`, `export WASMQ_SECRET =`).
fn sets_var(line: &str) -> bool {
    let line = line.trim_start();
    let line = line.strip_prefix("export ").map_or(line, str::trim_start);
    line.strip_prefix(VAR).is_some_and(|rest| rest.trim_start().starts_with('='))
}

/// `text` with its `WASMQ_SECRET` line(s) replaced by one setting `secret`
/// (where the first was, else at the end); other lines kept as they were.
fn with_secret(text: &str, secret: &str) -> String {
    let line = format!("{VAR}={secret}");
    let mut out = Vec::new();
    let mut placed = false;
    for l in text.lines() {
        if sets_var(l) {
            if !placed {
                out.push(line.clone());
                placed = true;
            }
        } else {
            out.push(l.to_string());
        }
    }
    if !placed {
        out.push(line);
    }
    out.join("\n") + "\n"
}

fn random_hex(chars: usize) -> String {
    use chacha20poly1305::aead::OsRng;
    use chacha20poly1305::aead::rand_core::RngCore;
    let mut bytes = vec![0u8; chars.div_ceil(2)];
    OsRng.fill_bytes(&mut bytes);
    let mut hexed = hex::encode(bytes);
    hexed.truncate(chars);
    hexed
}

/// Writes `text` to `path` with mode 0600: a new file beside it, then renamed
/// over it, so a crash leaves the old file or the new one, never half of one.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".env.wasmq-{}.tmp", std::process::id()));
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    let written = file.write_all(text.as_bytes()).and_then(|()| file.sync_all());
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_line_is_replaced_and_the_others_kept() {
        assert!(sets_var("WASMQ_SECRET=abc") && sets_var("  export WASMQ_SECRET = x"));
        assert!(!sets_var("WASMQ_SECRETS=x") && !sets_var("# WASMQ_SECRET=x") && !sets_var("OTHER=1"));
        assert_eq!(with_secret("", "s"), "WASMQ_SECRET=s\n");
        assert_eq!(
            with_secret("A=1\nWASMQ_SECRET=old\nB=2\nWASMQ_SECRET=dup", "s"),
            "A=1\nWASMQ_SECRET=s\nB=2\n"
        );
        assert_eq!(with_secret("A=1\n", "s"), "A=1\nWASMQ_SECRET=s\n");
    }

    #[test]
    fn secrets_have_the_asked_length_in_hex() {
        for n in [32, 33, 64, 1024] {
            let s = random_hex(n);
            assert_eq!(s.len(), n);
            assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(random_hex(64), random_hex(64));
    }
}
