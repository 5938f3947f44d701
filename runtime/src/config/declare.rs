//! The mechanism behind the settings table in `config.rs`: one row per
//! setting, from which its flag, `WASMQ_*` variable, TOML key, default, help
//! text, parsing and checks all derive.
//!
//! Why a macro over clap and toml rather than a layering crate (figment,
//! config): clap already reads flags and their `WASMQ_*` variables (and must,
//! to list them in `--help`), so the layer a crate would add is only the file;
//! a second environment reader would make two sources for one variable. The
//! macro keeps one row as the only place a setting is written, and the
//! precedence is three lines: clap's flag-over-env, then `or(file)`, then the
//! declared defaults.

/// Declares the server settings. Each row:
///
/// ```text
/// /// Help text (also the doc of the setting).
/// key: Kind, env "WASMQ_KEY", default "value in flag syntax",
///     |s, v| s.some.field = check(v)?;
/// ```
///
/// `key` is the TOML key and, in kebab-case, the flag; `Kind` implements
/// [`SettingValue`](super::values::SettingValue). `default "..."` is parsed
/// like a flag and applied by `Settings::new`; `described "..."` only says in
/// `--help` what the default is, because a lower layer computes it (core
/// counts, paths). The apply expression writes the value into `Settings` and
/// may fail with a message that follows the key (`"must be at least 1"`).
macro_rules! settings {
    (
        $(
            $(#[doc = $doc:literal])+
            $key:ident: $kind:ty, env $env:literal, $how:ident $shown:literal,
            |$s:ident, $v:ident| $apply:expr;
        )+
    ) => {
        /// `wasmq serve` options. Each comes from its flag, else its `WASMQ_*`
        /// variable (both read by clap), else the `--config` TOML file (the
        /// same name, with `_` for `-`), else its default.
        #[derive(Debug, Default, clap::Args)]
        #[command(after_help = $crate::config::declare::AFTER_HELP)]
        pub struct ServeArgs {
            #[arg(long, env = "WASMQ_CONFIG", help = "TOML file with any of the settings below, and `token`")]
            config: Option<std::path::PathBuf>,
            #[arg(
                long,
                help = "API only: this node runs no jobs; other nodes on its PostgreSQL database run them \
                        (it still takes dispatches, delivers callbacks and rescues lapsed leases)"
            )]
            no_workers: bool,
            $(
                #[arg(
                    long,
                    env = $env,
                    // clap names the flag even when the value came from the
                    // variable: the message names both.
                    value_parser = |text: &str| <$kind as $crate::config::values::SettingValue>::parse(text)
                        .map_err(|e| format!("{e} (from --{} or {})", stringify!($key).replace('_', "-"), $env)),
                    help = $crate::config::declare::help(&[$($doc),+], $shown),
                )]
                $key: Option<$kind>,
            )+
        }

        impl ServeArgs {
            /// Every setting's TOML key, in declaration order.
            pub const KEYS: &[&str] = &[$(stringify!($key)),+];

            /// The settings a config file's table names (each is removed from it).
            fn take_from(table: &mut toml::Table) -> Result<Self, String> {
                use $crate::config::values::SettingValue as _;
                Ok(Self {
                    config: None,
                    no_workers: false,
                    $(
                        $key: table
                            .remove(stringify!($key))
                            .map(|v| <$kind>::from_toml(v).map_err(|e| format!("{}: {e}", stringify!($key))))
                            .transpose()?,
                    )+
                })
            }

            /// Each setting from this layer if it has it, else from `lower`.
            fn or(self, lower: Self) -> Self {
                Self {
                    config: self.config.or(lower.config),
                    no_workers: self.no_workers || lower.no_workers,
                    $($key: self.$key.or(lower.$key),)+
                }
            }

            /// The declared defaults (`described` ones stay unset).
            fn declared_defaults() -> Self {
                use $crate::config::declare::declared_default;
                Self { config: None, no_workers: false, $($key: declared_default!($how $kind, $shown),)+ }
            }

            /// Checks and writes every setting this layer has into `s`; an
            /// error names the setting.
            #[allow(clippy::redundant_closure_call)]
            fn apply_to(self, s: &mut Settings) -> Result<(), String> {
                let no_workers = self.no_workers;
                $(
                    if let Some($v) = self.$key {
                        let $s = &mut *s;
                        (move || -> Result<(), String> {
                            $apply;
                            Ok(())
                        })()
                        .map_err(|e| format!("{} {e}", stringify!($key)))?;
                    }
                )+
                // After `workers`: the role wins over a count from any layer.
                if no_workers {
                    s.role = $crate::config::Role::Api;
                    s.queue.workers = 0;
                }
                Ok(())
            }
        }
    };
}

/// A row's default: `default "30s"` is parsed as the flag would be (a unit test
/// checks every one); `described "..."` is left to the layer below.
macro_rules! declared_default {
    (default $kind:ty, $shown:literal) => {
        Some(<$kind as $crate::config::values::SettingValue>::parse($shown).expect(concat!(
            "the declared default ",
            $shown,
            " parses (config tests check each)"
        )))
    };
    (described $kind:ty, $shown:literal) => {
        None
    };
}

pub(crate) use {declared_default, settings};

/// Shown after the settings in `wasmq serve --help`.
pub const AFTER_HELP: &str = "\
Authentication: the bearer token comes from WASMQ_TOKEN or `token = \"...\"` in the --config
file, never from a flag (it would show in `ps`); it acts as the admin of the `default` tenant.
The operator token (manages tenants and their tokens) comes from WASMQ_OPERATOR_TOKEN, else
the file --operator-token-file names, else `operator_token = \"...\"` in the --config file.
Without either token the server only listens on loopback addresses.

Precedence: flags, then WASMQ_* environment variables, then the --config file, then defaults.";

/// A row's help: its doc lines joined, then its default.
pub fn help(doc: &[&str], default: &str) -> String {
    let mut text = doc.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    text.push_str(" [default: ");
    text.push_str(default);
    text.push(']');
    text
}
