//! Precedence, defaults and checks of the server settings.
use super::*;
use clap::Parser;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

fn args(argv: &[&str]) -> ServeArgs {
    Cli::try_parse_from(std::iter::once("serve").chain(argv.iter().copied())).unwrap().serve
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f
}

#[test]
fn flags_beat_the_file_which_beats_defaults() {
    let f = file("workers = 7\nlisten = \"127.0.0.1:9999\"\nlease = \"5s\"\ndefault_memory = \"32MiB\"\n");
    let path = f.path().to_str().unwrap();
    let s = Settings::resolve(args(&["--config", path, "--workers", "3"]), SecretEnv::default()).unwrap();
    assert_eq!(s.queue.workers, 3, "flag wins over file");
    assert_eq!(s.listen.to_string(), "127.0.0.1:9999", "file wins over default");
    assert_eq!(s.queue.lease, Duration::from_secs(5));
    assert_eq!(s.default_limits.memory_bytes, 32 << 20);
    assert_eq!(s.database_url, "sqlite://wasmq.db", "default");
    assert!(s.token.is_none());
}

#[test]
fn the_token_comes_from_the_environment_before_the_file_and_never_prints() {
    let f = file("token = \"from-file\"\n");
    let path = f.path().to_str().unwrap();
    let s = Settings::resolve(
        args(&["--config", path]),
        SecretEnv { token: Some("from-env".into()), ..SecretEnv::default() },
    )
    .unwrap();
    assert_eq!(s.token.as_ref().unwrap().expose(), "from-env");
    assert!(!format!("{s:?}").contains("from-env"), "the token leaked into Debug output");
    let s = Settings::resolve(args(&["--config", path]), SecretEnv::default()).unwrap();
    assert_eq!(s.token.unwrap().expose(), "from-file");
}

#[test]
fn the_caps_on_waits_and_event_streams_come_from_flags_or_the_file() {
    let s = Settings::resolve(args(&[]), SecretEnv::default()).unwrap();
    assert_eq!((s.max_waits, s.max_event_streams), (10_000, 1_000), "defaults");
    let f = file("max_waits = 5\nmax_event_streams = 7\n");
    let path = f.path().to_str().unwrap();
    let s = Settings::resolve(args(&["--config", path, "--max-waits", "3"]), SecretEnv::default()).unwrap();
    assert_eq!((s.max_waits, s.max_event_streams), (3, 7));
    let err = Settings::resolve(args(&["--max-event-streams", "0"]), SecretEnv::default()).unwrap_err();
    assert!(err.to_string().contains("max_event_streams must be at least 1"), "{err}");
}

#[test]
fn unknown_file_keys_and_bad_values_are_errors_naming_them() {
    let f = file("wrokers = 2\n");
    let err =
        Settings::resolve(args(&["--config", f.path().to_str().unwrap()]), SecretEnv::default()).unwrap_err();
    assert!(format!("{err:#}").contains("wrokers"), "{err:#}");
    let err = Settings::resolve(args(&["--workers", "0"]), SecretEnv::default()).unwrap_err();
    assert!(err.to_string().contains("workers must be between 1 and 4096"), "{err}");
    let err = Settings::resolve(args(&["--workers", "4097"]), SecretEnv::default()).unwrap_err();
    assert!(err.to_string().contains("workers must be between 1 and 4096"), "{err}");
    // Every worker gets a sandbox slot: past the default pool, the pool grows with them.
    let s = Settings::resolve(args(&["--workers", "1000"]), SecretEnv::default()).unwrap();
    assert_eq!(s.engine.max_instances, 1000 + POOL_HEADROOM);
    let s = Settings::resolve(args(&["--workers", "2"]), SecretEnv::default()).unwrap();
    assert_eq!(s.engine.max_instances, 128, "the default pool");
    assert!(Cli::try_parse_from(["serve", "--queue-limits", "gpu=1"]).is_err(), "limits are the cluster's");
    assert_eq!(s.queue.retention, Some(Duration::from_secs(7 * 24 * 3600)), "default retention");
    let s = Settings::resolve(args(&["--retention", "forever"]), SecretEnv::default()).unwrap();
    assert_eq!(s.queue.retention, None);
    let f = file("retention = \"36h\"\n");
    let s = Settings::resolve(args(&["--config", f.path().to_str().unwrap()]), SecretEnv::default()).unwrap();
    assert_eq!(s.queue.retention, Some(Duration::from_secs(36 * 3600)));
    let f = file("callback_allow = [\"10.1.0.0/16\", \"127.0.0.0/8\"]\n");
    let s = Settings::resolve(args(&["--config", f.path().to_str().unwrap()]), SecretEnv::default()).unwrap();
    assert_eq!(s.callbacks.policy.allowed().len(), 2);
    assert!(s.callbacks.policy.check_ip("127.0.0.1".parse().unwrap()).is_ok());
    let s = Settings::resolve(
        args(&["--config", f.path().to_str().unwrap(), "--callback-allow", "::1"]),
        SecretEnv::default(),
    )
    .unwrap();
    assert!(s.callbacks.policy.check_ip("127.0.0.1".parse().unwrap()).is_err(), "the flag replaces the file");
    let s = Settings::resolve(args(&[]), SecretEnv::default()).unwrap();
    assert!(
        s.callbacks.policy.check_ip("127.0.0.1".parse().unwrap()).is_err(),
        "loopback refused by default"
    );
    let f = file("callback_allow = [\"10.1.0.0/99\"]\n");
    let err =
        Settings::resolve(args(&["--config", f.path().to_str().unwrap()]), SecretEnv::default()).unwrap_err();
    assert!(err.to_string().contains("callback_allow"), "{err}");
    assert!(Cli::try_parse_from(["serve", "--callback-allow", "localhost"]).is_err());
    let f = file("retention = \"soon\"\n");
    let err =
        Settings::resolve(args(&["--config", f.path().to_str().unwrap()]), SecretEnv::default()).unwrap_err();
    assert!(err.to_string().contains("retention"), "{err}");
}

#[test]
fn compile_and_alias_history_settings_resolve_and_are_checked() {
    let s = Settings::resolve(args(&[]), SecretEnv::default()).unwrap();
    assert!(s.engine.max_concurrent_compiles >= 1);
    assert_eq!(s.engine.compile_queue, 16);
    assert_eq!(s.alias_history, 100);
    let f = file("max_concurrent_compiles = 3\ncompile_queue = 0\nalias_history = 5\n");
    let path = f.path().to_str().unwrap();
    let s =
        Settings::resolve(args(&["--config", path, "--max-concurrent-compiles", "2"]), SecretEnv::default())
            .unwrap();
    assert_eq!((s.engine.max_concurrent_compiles, s.engine.compile_queue, s.alias_history), (2, 0, 5));
    let err = Settings::resolve(args(&["--max-concurrent-compiles", "0"]), SecretEnv::default()).unwrap_err();
    assert!(err.to_string().contains("max_concurrent_compiles"), "{err}");
    let err = Settings::resolve(args(&["--alias-history", "1"]), SecretEnv::default()).unwrap_err();
    assert!(err.to_string().contains("alias_history"), "{err}");
}

#[test]
fn connection_settings_come_from_flags_and_the_file() {
    let s = Settings::resolve(args(&[]), SecretEnv::default()).unwrap();
    assert_eq!(s.http.header_timeout, Duration::from_secs(10), "default");
    let f = file("header_timeout = \"2s\"\nbody_timeout = \"5s\"\nmax_connections = 50\n");
    let path = f.path().to_str().unwrap();
    let s =
        Settings::resolve(args(&["--config", path, "--max-connections", "7"]), SecretEnv::default()).unwrap();
    assert_eq!(s.http.header_timeout, Duration::from_secs(2));
    assert_eq!(s.http.body_timeout, Duration::from_secs(5));
    assert_eq!(s.http.max_connections, 7, "flag wins over file");
    let err = Settings::resolve(args(&["--header-timeout", "0s"]), SecretEnv::default()).unwrap_err();
    assert!(err.to_string().contains("header_timeout"), "{err}");
    let err = Settings::resolve(args(&["--max-connections", "0"]), SecretEnv::default()).unwrap_err();
    assert!(err.to_string().contains("max_connections"), "{err}");
    let err = Settings::resolve(args(&["--retention", "100000000y"]), SecretEnv::default()).unwrap_err();
    assert!(err.to_string().contains("retention must be at most 100 years"), "{err}");
    let err = Settings::resolve(args(&["--lease", "1000y"]), SecretEnv::default()).unwrap_err();
    assert!(err.to_string().contains("lease must be at most 100 years"), "{err}");
}

#[test]
fn every_declared_default_parses_and_applies() {
    let s = Settings::resolve(args(&[]), SecretEnv::default()).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:7700");
    assert_eq!(s.database_url, "sqlite://wasmq.db");
    assert_eq!(s.queue.prefetch, 256);
    assert_eq!(s.engine.max_module_bytes, 32 << 20);
    assert_eq!(s.max_body_bytes, 16 << 20);
    assert_eq!(s.default_limits.fuel, Some(1_000_000_000));
    assert_eq!(s.default_limits.timeout, Duration::from_secs(30));
    assert_eq!(s.default_limits.memory_bytes, 64 << 20);
    assert_eq!(s.default_max_attempts, 3);
    assert_eq!(s.engine.cache_dir, default_cache_dir());
    assert_eq!((s.queue.lease, s.queue.retry_base), (Duration::from_secs(30), Duration::from_secs(1)));
    assert_eq!(
        (s.queue.retry_max, s.queue.shutdown_grace),
        (Duration::from_secs(300), Duration::from_secs(10))
    );
    assert_eq!(s.max_queued_jobs, 1_000_000);
    assert_eq!((s.callbacks.max_attempts, s.callbacks.retry_base), (10, Duration::from_secs(1)));
    assert_eq!((s.http.body_timeout, s.http.max_connections), (Duration::from_secs(60), 10_000));
    assert!(s.callbacks.key_file.is_none() && s.callbacks.policy.allowed().is_empty());
    // `Settings::new` (what embedders and tests start from) has the same defaults.
    let n = Settings::new(s.listen, "sqlite://wasmq.db", PathBuf::from("wasmq"));
    assert_eq!(format!("{:?}", n.queue), format!("{:?}", s.queue));
    assert_eq!(format!("{:?}", n.default_limits), format!("{:?}", s.default_limits));
    assert_eq!(
        (n.max_body_bytes, n.alias_history, n.max_waits),
        (s.max_body_bytes, s.alias_history, s.max_waits)
    );
}

#[test]
fn serve_help_lists_every_setting_with_its_default_and_variable() {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let help = cmd.render_long_help().to_string();
    for key in ServeArgs::KEYS {
        let flag = key.replace('_', "-");
        let arg = cmd.get_arguments().find(|a| a.get_long() == Some(flag.as_str())).expect(key);
        let env = arg.get_env().expect(key).to_str().unwrap().to_string();
        assert!(env.starts_with("WASMQ_"), "{key}: {env}");
        assert!(arg.get_help().unwrap().to_string().contains("[default: "), "{key} shows no default");
        assert!(help.contains(&format!("--{flag} <")) && help.contains(&env), "{key} missing from --help");
    }
    assert!(cmd.get_arguments().all(|a| a.get_long() != Some("token")), "the token must never be a flag");
    assert!(help.contains("WASMQ_TOKEN"), "--help says where the token comes from");
}

#[test]
fn file_values_take_their_toml_form_or_the_flag_syntax() {
    let f = file(
        "max_body_size = 1024\nmax_module_size = \"1MiB\"\nqueues = \"gpu,mail\"\n\
         callback_allow = \"::1\"\n",
    );
    let s = Settings::resolve(args(&["--config", f.path().to_str().unwrap()]), SecretEnv::default()).unwrap();
    assert_eq!((s.max_body_bytes, s.engine.max_module_bytes), (1024, 1 << 20));
    assert_eq!(s.queue.queues.as_deref(), Some(&["gpu".to_string(), "mail".to_string()][..]));
    let f = file("queue_limits = { gpu = 1 }\n");
    let err =
        Settings::resolve(args(&["--config", f.path().to_str().unwrap()]), SecretEnv::default()).unwrap_err();
    assert!(err.to_string().contains("wasmq queue limit"), "{err}");
    assert_eq!(s.callbacks.policy.allowed().len(), 1);
    let f = file("workers = \"three\"\n");
    let err =
        Settings::resolve(args(&["--config", f.path().to_str().unwrap()]), SecretEnv::default()).unwrap_err();
    assert!(err.to_string().contains("workers: expected a whole number"), "{err}");
    let f = file("token = \"\"\n");
    let err =
        Settings::resolve(args(&["--config", f.path().to_str().unwrap()]), SecretEnv::default()).unwrap_err();
    assert!(err.to_string().contains("token must be a non-empty string"), "{err}");
}

#[test]
fn a_database_url_names_its_backend_and_an_unknown_one_is_refused_without_its_password() {
    let url = "postgresql://u:hunter2@db/wasmq";
    let s = Settings::resolve(args(&["--database", url]), SecretEnv::default()).unwrap();
    assert_eq!(s.database_url, url);
    let f = file("database = \"postgres://db/wasmq\"\n");
    let s = Settings::resolve(args(&["--config", f.path().to_str().unwrap()]), SecretEnv::default()).unwrap();
    assert_eq!(s.database_url, "postgres://db/wasmq");
    let err = Settings::resolve(args(&["--database", "mysql://u:hunter2@db/wasmq"]), SecretEnv::default())
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("database has the scheme `mysql:`"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let err = Settings::resolve(args(&["--default-fuel", "0"]), SecretEnv::default()).unwrap_err();
    assert!(err.to_string().contains("default_fuel"), "{err}");
}

#[test]
fn a_value_clap_refuses_names_the_flag_and_the_variable() {
    let err = Cli::try_parse_from(["serve", "--workers", "abc"]).err().unwrap().to_string();
    assert!(err.contains("expected a whole number") && err.contains("WASMQ_WORKERS"), "{err}");
    let err = Cli::try_parse_from(["serve", "--lease", "5"]).err().unwrap().to_string();
    assert!(err.contains("--lease or WASMQ_LEASE"), "{err}");
}

#[test]
fn the_operator_token_comes_from_the_environment_then_its_file_then_the_config_never_a_flag() {
    let secret = file("  from-token-file\n");
    let secret_path = secret.path().to_str().unwrap();
    let conf = file("operator_token = \"from-config\"\n");
    let conf_path = conf.path().to_str().unwrap();
    let env = |op: &str| SecretEnv { operator_token: Some(op.into()), ..SecretEnv::default() };
    let s = Settings::resolve(
        args(&["--config", conf_path, "--operator-token-file", secret_path]),
        env("from-env"),
    )
    .unwrap();
    assert_eq!(s.operator_token.as_ref().unwrap().expose(), "from-env");
    assert!(!format!("{s:?}").contains("from-env"), "the operator token leaked into Debug output");
    assert!(!format!("{:?}", env("from-env")).contains("from-env"), "SecretEnv leaked it");
    let s = Settings::resolve(
        args(&["--config", conf_path, "--operator-token-file", secret_path]),
        SecretEnv::default(),
    )
    .unwrap();
    assert_eq!(s.operator_token.as_ref().unwrap().expose(), "from-token-file", "trimmed");
    let s = Settings::resolve(args(&["--config", conf_path]), SecretEnv::default()).unwrap();
    assert_eq!(s.operator_token.as_ref().unwrap().expose(), "from-config");
    assert!(s.token.is_none(), "the operator token is not the tenant token");

    let empty = file("\n");
    let err = Settings::resolve(
        args(&["--operator-token-file", empty.path().to_str().unwrap()]),
        SecretEnv::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("operator_token_file") && err.contains("is empty"), "{err}");
    let same =
        SecretEnv { token: Some("x".into()), operator_token: Some("x".into()), ..SecretEnv::default() };
    let err = Settings::resolve(args(&[]), same).unwrap_err().to_string();
    assert!(err.contains("must differ"), "{err}");

    let cmd = <Cli as clap::CommandFactory>::command();
    let serve_flags: Vec<_> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
    assert!(!serve_flags.contains(&"operator-token"), "the operator token must never be a flag");
    assert!(Cli::try_parse_from(["serve", "--operator-token", "x"]).is_err());
}

#[test]
fn tenant_quota_defaults_come_from_flags_or_the_file_and_may_be_unlimited() {
    let s = Settings::resolve(args(&[]), SecretEnv::default()).unwrap();
    let q = &s.tenant_quotas;
    assert_eq!(
        (q.max_waiting, q.max_modules, q.max_waits, q.max_event_streams),
        (Some(100_000), Some(1000), Some(1000), Some(100))
    );
    assert_eq!(
        (q.max_fuel, q.max_timeout_ms, q.max_memory_mb, q.dispatch_rate),
        (None, None, None, None),
        "unlimited"
    );
    let f = file(
        "tenant_max_fuel = 5000\ntenant_max_modules = \"unlimited\"\n\
         tenant_dispatch_rate = { per_second = 10, burst = 20 }\n",
    );
    let path = f.path().to_str().unwrap();
    let argv = [
        "--config",
        path,
        "--tenant-max-memory",
        "128MiB",
        "--tenant-max-timeout",
        "90s",
        "--tenant-max-fuel",
        "7000",
    ];
    let s = Settings::resolve(args(&argv), SecretEnv::default()).unwrap();
    let q = &s.tenant_quotas;
    assert_eq!(
        (q.max_fuel, q.max_memory_mb, q.max_timeout_ms, q.max_modules),
        (Some(7000), Some(128), Some(90_000), None)
    );
    assert_eq!(q.dispatch_rate, Some(DispatchRate { per_second: 10, burst: 20 }));
    let err = Settings::resolve(args(&["--tenant-max-memory", "1kB"]), SecretEnv::default()).unwrap_err();
    assert!(err.to_string().contains("tenant_max_memory must be at least 1MiB"), "{err}");
}

#[test]
fn the_role_follows_the_command_and_a_worker_needs_postgres() {
    let s = Settings::resolve(args(&[]), SecretEnv::default()).unwrap();
    assert_eq!((s.role, s.queue.queues.clone()), (Role::Server, None));
    let s = Settings::resolve(args(&["--no-workers", "--workers", "4"]), SecretEnv::default()).unwrap();
    assert_eq!((s.role, s.queue.workers), (Role::Api, 0), "the role wins over a count");
    let err = s.into_worker().unwrap_err().to_string();
    assert!(err.contains("--no-workers"), "{err}");
    let sqlite = Settings::resolve(args(&["--queues", "gpu"]), SecretEnv::default()).unwrap();
    let err = sqlite.into_worker().unwrap_err().to_string();
    assert!(err.contains("postgres://") && err.contains("wasmq serve"), "{err}");
    let f = file("queues = [\"mail\", \"gpu\"]\ndatabase = \"postgresql://u@db/wasmq\"\n");
    let s = Settings::resolve(args(&["--config", f.path().to_str().unwrap()]), SecretEnv::default()).unwrap();
    let w = s.into_worker().unwrap();
    assert_eq!(w.role, Role::Worker);
    assert_eq!(w.queue.queues, Some(vec!["gpu".to_string(), "mail".to_string()]));
    assert!(w.queue.consumes("gpu") && !w.queue.consumes("default"));
    let err = Cli::try_parse_from(["serve", "--queues", "Bad Name"]).err().unwrap().to_string();
    assert!(err.contains("--queues") && err.contains("WASMQ_QUEUES"), "{err}");
}

#[test]
fn traces_are_off_by_default_and_their_settings_are_checked() {
    let s = Settings::resolve(args(&[]), SecretEnv::default()).unwrap();
    assert_eq!((s.traces.endpoint.as_deref(), s.traces.sample_ratio), (None, 1.0));
    let f = file("otlp_endpoint = \"http://collector:4318/\"\ntrace_sample_ratio = 0.25\n");
    let s = Settings::resolve(args(&["--config", f.path().to_str().unwrap()]), SecretEnv::default()).unwrap();
    assert_eq!((s.traces.endpoint.as_deref(), s.traces.sample_ratio), (Some("http://collector:4318"), 0.25));
    for (flag, value, says) in [
        ("--otlp-endpoint", "ftp://collector", "otlp_endpoint expected an http or https URL"),
        ("--otlp-endpoint", "collector:4318", "otlp_endpoint expected an http or https URL"),
        ("--otlp-endpoint", "http://c:4318/?key=1", "otlp_endpoint expected a URL without query"),
        ("--trace-sample-ratio", "1.5", "trace_sample_ratio must be between 0 and 1"),
    ] {
        let err = Settings::resolve(args(&[flag, value]), SecretEnv::default()).unwrap_err();
        assert!(format!("{err:#}").contains(says), "{flag} {value}: {err:#}");
    }
    let f = file("trace_sample_ratio = nan\n");
    let err =
        Settings::resolve(args(&["--config", f.path().to_str().unwrap()]), SecretEnv::default()).unwrap_err();
    assert!(format!("{err:#}").contains("expected a number"), "{err:#}");
}
