//! Typed configuration, read once at start-up (API.md §11).
//!
//! Values come from the process environment and from a `.env` file in the working
//! directory; the environment wins. Every variable is parsed here, so a bad value stops
//! the start with one line that names the variable and the accepted form.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A configuration error: the variable, what it accepts, and what it was given.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// What is wrong and what would be accepted.
    pub problem: String,
}

impl ConfigError {
    fn expected(var: &'static str, form: &str, got: &str) -> Self {
        Self {
            var,
            problem: format!("expected {form}, got {got:?}"),
        }
    }
}

/// Where the server runs: development is forgiving, production refuses unsafe settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// Local work: pretty console logs, a random JWT secret when none is set.
    Development,
    /// Test runs (behaves like development, but says so in logs).
    Test,
    /// Real deployments: JSON logs, `Secure` cookies, a strong JWT secret required.
    Production,
}

/// The database the binary talks to, picked by the scheme of `DATABASE_URL`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://path/to/file.db` (relative to the working directory) or `sqlite:///abs/path`.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`, passed to the driver as written.
    Postgres(String),
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Self::Postgres(url) => write!(f, "{}", redact_url(url)),
        }
    }
}

/// Replaces the password of a URL (`scheme://user:secret@host`) with `***`.
#[must_use]
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_owned(),
    }
}

impl DatabaseUrl {
    /// Parses a `DATABASE_URL` (also `migrate-data`'s `--from` and `--to`).
    ///
    /// # Errors
    /// Not a SQLite or PostgreSQL URL, or an in-memory database.
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let form = "sqlite://<path>, sqlite:///<absolute path>, postgres://… or postgresql://…";
        if let Some(path) = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                return Err(ConfigError::expected(
                    "DATABASE_URL",
                    "a SQLite file path (an in-memory database would lose every message)",
                    raw,
                ));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self::Postgres(raw.to_owned()));
        }
        Err(ConfigError::expected(
            "DATABASE_URL",
            form,
            &redact_url(raw),
        ))
    }
}

/// A secret value whose `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// The secret's bytes, for the one place that needs them.
    #[must_use]
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `count` events per `window`, as written `100/15m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateQuota {
    /// Events allowed per window.
    pub count: u32,
    /// The window length.
    pub window: Duration,
}

impl RateQuota {
    fn parse(var: &'static str, raw: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::expected(var, "<count>/<duration> such as 100/15m or 30/1m", raw);
        let (count, window) = raw.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let window = parse_duration(window.trim()).ok_or_else(bad)?;
        if count == 0 || window.is_zero() {
            return Err(bad());
        }
        Ok(Self { count, window })
    }
}

/// Who receives `user:online` / `user:offline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceBroadcast {
    /// Every connected user (as the original server).
    All,
    /// Only users who share a channel with the user.
    Shared,
    /// Nobody: clients poll `GET /api/users/online`.
    None,
}

/// An IP network, `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    fn parse(raw: &str) -> Option<Self> {
        let (addr, prefix) = match raw.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (raw.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { addr, prefix })
    }

    /// Whether `ip` lies inside this network.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Console log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, coloured when the console is a terminal.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Logging settings.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Minimum level: error, warn, info, debug or trace.
    pub level: tracing::Level,
    /// Folder of `combined.log` and `error.log`.
    pub dir: PathBuf,
    /// Console format.
    pub format: LogFormat,
    /// Dated files kept per log.
    pub max_files: usize,
    /// Whether the server renames its files at midnight UTC (`LOG_ROTATION=daily`) or leaves
    /// that to logrotate (`off`; SIGHUP reopens them either way).
    pub rotate_daily: bool,
}

/// Rate-limit settings (API.md §9).
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    /// Off switch for every limit (load tests, trusted deployments).
    pub enabled: bool,
    /// Every `/api` route, per user (signed in) or client IP.
    pub api: RateQuota,
    /// Signup and login together, per client IP.
    pub auth: RateQuota,
    /// Message sends (REST and socket), per user.
    pub messages: RateQuota,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

/// How long a connection may keep the server waiting, and how many it may hold open.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// A request head must arrive within this long of the server starting to wait for it
    /// on a new connection, or of its first byte on a kept-alive one.
    pub header_timeout: Duration,
    /// A kept-alive connection with no request for this long is closed.
    pub keepalive_timeout: Duration,
    /// A request body must arrive whole within this long of its head.
    pub body_timeout: Duration,
    /// A response the client stops reading for this long is abandoned with its connection.
    pub send_timeout: Duration,
    /// Idle time before TCP keepalive probes ask whether the peer is still there.
    pub tcp_keepalive: Duration,
    /// Open connections in total (`None`: derived from the open-file limit at start-up).
    pub max_connections: Option<usize>,
    /// Open connections per client address (peers in `TRUSTED_PROXIES` are exempt).
    pub max_connections_per_ip: usize,
}

/// The whole configuration, typed.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to bind.
    pub host: IpAddr,
    /// Port to bind (0 picks a free one).
    pub port: u16,
    /// Development, test or production.
    pub app_env: AppEnv,
    /// The database.
    pub database_url: DatabaseUrl,
    /// Largest number of pooled database connections.
    pub database_max_connections: u32,
    /// Redis, when several nodes share presence, counters and events.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and pub/sub channel.
    pub redis_prefix: String,
    /// Who hears about presence changes.
    pub presence_broadcast: PresenceBroadcast,
    /// How long a user whose last socket closed may take to come back before `user:offline`
    /// goes out (0: at once). A return within it announces nothing at all.
    pub presence_grace: Duration,
    /// Many nodes: how long a node that stopped renewing its presence (killed, frozen, cut
    /// off from Redis) keeps its users online; the other nodes then announce them offline.
    pub presence_node_ttl: Duration,
    /// How long a typing state lasts with no new `typing-start` before the server ends it.
    pub typing_timeout: Duration,
    /// Channels with more members than this take `@channel` / `@here` from their owner and
    /// admins only.
    pub mention_all_max_members: u32,
    /// The server's admins (`ADMIN_USERNAMES`), lower-cased: they read the whole audit log.
    pub admin_usernames: Vec<String>,
    /// How long audit entries are kept (`AUDIT_RETENTION_DAYS`); `None` keeps them for ever.
    pub audit_retention: Option<Duration>,
    /// HS256 key for tokens.
    pub jwt_secret: Secret,
    /// Whether the secret was generated for this run (development only).
    pub jwt_secret_generated: bool,
    /// Token lifetime.
    pub jwt_expires_in: Duration,
    /// bcrypt work factor.
    pub bcrypt_cost: u32,
    /// The one CORS origin allowed, with credentials.
    pub frontend_url: String,
    /// Rate limits.
    pub rate_limit: RateLimitConfig,
    /// Where uploaded files go.
    pub storage_url: String,
    /// Largest accepted upload, in bytes.
    pub max_file_size: u64,
    /// Logging.
    pub log: LogConfig,
    /// How long a shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// How long one REST request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Connection timeouts and caps.
    pub connections: ConnectionConfig,
    /// Gather concurrent message sends into one transaction (off only to measure the gain).
    pub message_group_commit: bool,
    /// Where `GET /metrics` is served, on a listener of its own; `None`: not served.
    pub metrics_addr: Option<SocketAddr>,
}

/// Parses `30s`, `15m`, `12h`, `7d`, `2w`, `250ms` or a bare number of seconds.
#[must_use]
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let secs = |m: u64| n.checked_mul(m).map(Duration::from_secs);
    match unit.trim() {
        "" | "s" => secs(1),
        "ms" => Some(Duration::from_millis(n)),
        "m" => secs(60),
        "h" => secs(3600),
        "d" => secs(86_400),
        "w" => secs(604_800),
        _ => None,
    }
}

const DURATION_FORM: &str = "a duration such as 30s, 15m, 12h or 7d";

/// Reads variables by name, remembering which ones were looked at.
struct Vars<'a> {
    map: &'a HashMap<String, String>,
}

impl Vars<'_> {
    fn get(&self, var: &str) -> Option<&str> {
        self.map
            .get(var)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn or<'s>(&'s self, var: &str, default: &'s str) -> &'s str {
        self.get(var).unwrap_or(default)
    }

    fn parse<T: FromStr>(
        &self,
        var: &'static str,
        default: T,
        form: &str,
    ) -> Result<T, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|_| ConfigError::expected(var, form, raw)),
        }
    }

    fn duration(&self, var: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => parse_duration(raw)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| ConfigError::expected(var, DURATION_FORM, raw)),
        }
    }

    fn bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(default),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            Some(other) => Err(ConfigError::expected(var, "true or false", other)),
        }
    }
}

impl Config {
    /// Reads `.env` (if present) and the environment; the environment wins.
    ///
    /// # Errors
    /// The first variable whose value cannot be used.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_and_flags(HashMap::new())
    }

    /// As [`Config::from_env`], with values given on the command line winning over both.
    ///
    /// # Errors
    /// The first variable whose value cannot be used.
    pub fn from_env_and_flags(flags: HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut map = HashMap::new();
        if let Ok(iter) = dotenvy::from_path_iter(".env") {
            for item in iter {
                let (k, v) = item.map_err(|e| ConfigError {
                    var: ".env",
                    problem: format!("cannot be read: {e}"),
                })?;
                map.insert(k, v);
            }
        }
        map.extend(std::env::vars());
        map.extend(flags);
        Self::from_map(&map)
    }

    /// Builds the configuration from a map of variables (tests use this directly).
    ///
    /// # Errors
    /// The first variable whose value cannot be used.
    pub fn from_map(map: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let v = Vars { map };
        let app_env = match v.or("APP_ENV", "development").to_ascii_lowercase().as_str() {
            "development" | "dev" => AppEnv::Development,
            "test" => AppEnv::Test,
            "production" | "prod" => AppEnv::Production,
            other => {
                return Err(ConfigError::expected(
                    "APP_ENV",
                    "development, test or production",
                    other,
                ));
            }
        };
        let host = match v.or("HOST", "127.0.0.1") {
            "localhost" => IpAddr::from([127, 0, 0, 1]),
            raw => raw.parse().map_err(|_| {
                ConfigError::expected("HOST", "an IP address such as 127.0.0.1 or 0.0.0.0", raw)
            })?,
        };
        let port = v.parse("PORT", 3000u16, "a port number from 0 to 65535")?;
        let database_url = DatabaseUrl::parse(v.or("DATABASE_URL", "sqlite://data/chai-tapri.db"))?;
        let database_max_connections = v.parse(
            "DATABASE_MAX_CONNECTIONS",
            10u32,
            "a number of connections from 1 to 1000",
        )?;
        if !(1..=1000).contains(&database_max_connections) {
            return Err(ConfigError::expected(
                "DATABASE_MAX_CONNECTIONS",
                "a number of connections from 1 to 1000",
                &database_max_connections.to_string(),
            ));
        }
        let redis_url = match v.get("REDIS_URL") {
            None => None,
            Some(raw) if raw.starts_with("redis://") => Some(raw.to_owned()),
            Some(raw) => {
                return Err(ConfigError::expected(
                    "REDIS_URL",
                    "redis://host:port[/db]",
                    &redact_url(raw),
                ));
            }
        };
        let redis_prefix = v.or("REDIS_PREFIX", "chai:").to_owned();
        let presence_broadcast = match v
            .or("PRESENCE_BROADCAST", "all")
            .to_ascii_lowercase()
            .as_str()
        {
            "all" => PresenceBroadcast::All,
            "shared" => PresenceBroadcast::Shared,
            "none" => PresenceBroadcast::None,
            other => {
                return Err(ConfigError::expected(
                    "PRESENCE_BROADCAST",
                    "all, shared or none",
                    other,
                ));
            }
        };
        let (jwt_secret, jwt_secret_generated) = match v.get("JWT_SECRET") {
            Some(s) if app_env == AppEnv::Production && s.len() < 32 => {
                return Err(ConfigError {
                    var: "JWT_SECRET",
                    problem: format!(
                        "must be at least 32 bytes when APP_ENV=production (it has {})",
                        s.len()
                    ),
                });
            }
            Some(s) => (Secret(s.as_bytes().to_vec()), false),
            None if app_env == AppEnv::Production => {
                return Err(ConfigError {
                    var: "JWT_SECRET",
                    problem: "must be set (at least 32 bytes) when APP_ENV=production".into(),
                });
            }
            None => {
                let mut bytes = vec![0u8; 64];
                getrandom::fill(&mut bytes).map_err(|e| ConfigError {
                    var: "JWT_SECRET",
                    problem: format!("is unset and no random one could be made: {e}"),
                })?;
                (Secret(bytes), true)
            }
        };
        let jwt_expires_in = v.duration("JWT_EXPIRES_IN", Duration::from_secs(7 * 86_400))?;
        let bcrypt_cost = v.parse("BCRYPT_COST", 12u32, "a bcrypt cost from 4 to 31")?;
        if !(4..=31).contains(&bcrypt_cost) {
            return Err(ConfigError::expected(
                "BCRYPT_COST",
                "a bcrypt cost from 4 to 31",
                &bcrypt_cost.to_string(),
            ));
        }
        let frontend_url = v
            .or("FRONTEND_URL", "http://localhost:5173")
            .trim_end_matches('/')
            .to_owned();
        if !(frontend_url.starts_with("http://") || frontend_url.starts_with("https://"))
            || axum::http::HeaderValue::from_str(&frontend_url).is_err()
        {
            return Err(ConfigError::expected(
                "FRONTEND_URL",
                "an origin such as https://chat.example.com",
                &frontend_url,
            ));
        }
        let trusted_proxies = v
            .or("TRUSTED_PROXIES", "")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                IpNet::parse(s).ok_or_else(|| {
                    ConfigError::expected(
                        "TRUSTED_PROXIES",
                        "comma-separated IP addresses or CIDRs such as 10.0.0.0/8",
                        s,
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rate_limit = RateLimitConfig {
            enabled: v.bool("RATE_LIMIT_ENABLED", true)?,
            api: RateQuota::parse("RATE_LIMIT_API", v.or("RATE_LIMIT_API", "100/15m"))?,
            auth: RateQuota::parse("RATE_LIMIT_AUTH", v.or("RATE_LIMIT_AUTH", "5/15m"))?,
            messages: RateQuota::parse(
                "RATE_LIMIT_MESSAGES",
                v.or("RATE_LIMIT_MESSAGES", "30/1m"),
            )?,
            trusted_proxies,
        };
        let storage_url = v.or("STORAGE_URL", "data/uploads").to_owned();
        if !(storage_url.starts_with("file:///")
            || storage_url.starts_with("s3://")
            || !storage_url.contains("://"))
        {
            return Err(ConfigError::expected(
                "STORAGE_URL",
                "a directory path, file:///absolute/path or s3://bucket?endpoint=…&region=…",
                &redact_url(&storage_url),
            ));
        }
        let max_file_size = v.parse(
            "MAX_FILE_SIZE",
            10_485_760u64,
            "a size in bytes such as 10485760",
        )?;
        let mention_all_max_members = v.parse(
            "MENTION_ALL_MAX_MEMBERS",
            100u32,
            "a number of members such as 100",
        )?;
        let admin_usernames = v
            .get("ADMIN_USERNAMES")
            .unwrap_or_default()
            .split(',')
            .map(|name| name.trim().to_lowercase())
            .filter(|name| !name.is_empty())
            .collect();
        let retention_days = v.parse(
            "AUDIT_RETENTION_DAYS",
            365u32,
            "a number of days such as 365 (0 keeps entries for ever)",
        )?;
        let audit_retention =
            (retention_days > 0).then(|| Duration::from_secs(u64::from(retention_days) * 86_400));
        let level = match v.or("LOG_LEVEL", "info").to_ascii_lowercase().as_str() {
            "error" => tracing::Level::ERROR,
            "warn" => tracing::Level::WARN,
            "info" => tracing::Level::INFO,
            "debug" => tracing::Level::DEBUG,
            "trace" => tracing::Level::TRACE,
            other => {
                return Err(ConfigError::expected(
                    "LOG_LEVEL",
                    "error, warn, info, debug or trace",
                    other,
                ));
            }
        };
        let default_format = if app_env == AppEnv::Production {
            "json"
        } else {
            "pretty"
        };
        let format = match v
            .or("LOG_FORMAT", default_format)
            .to_ascii_lowercase()
            .as_str()
        {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => return Err(ConfigError::expected("LOG_FORMAT", "pretty or json", other)),
        };
        let max_files = v.parse(
            "LOG_MAX_FILES",
            14usize,
            "a number of files from 1 to 10000",
        )?;
        if !(1..=10_000).contains(&max_files) {
            return Err(ConfigError::expected(
                "LOG_MAX_FILES",
                "a number of files from 1 to 10000",
                &max_files.to_string(),
            ));
        }
        Ok(Self {
            host,
            port,
            app_env,
            database_url,
            database_max_connections,
            redis_url,
            redis_prefix,
            presence_broadcast,
            presence_grace: match v.get("PRESENCE_GRACE") {
                None => Duration::ZERO,
                Some(raw) => parse_duration(raw)
                    .ok_or_else(|| ConfigError::expected("PRESENCE_GRACE", DURATION_FORM, raw))?,
            },
            presence_node_ttl: match v.get("PRESENCE_NODE_TTL") {
                None => crate::backends::redis::PRESENCE_TTL,
                Some(raw) => parse_duration(raw)
                    .filter(|d| *d >= Duration::from_secs(3))
                    .ok_or_else(|| {
                        ConfigError::expected("PRESENCE_NODE_TTL", "a duration of at least 3s", raw)
                    })?,
            },
            typing_timeout: match v.get("TYPING_TIMEOUT") {
                None => Duration::from_secs(5),
                Some(raw) => parse_duration(raw)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| ConfigError::expected("TYPING_TIMEOUT", DURATION_FORM, raw))?,
            },
            jwt_secret,
            jwt_secret_generated,
            jwt_expires_in,
            bcrypt_cost,
            frontend_url,
            rate_limit,
            storage_url,
            max_file_size,
            mention_all_max_members,
            admin_usernames,
            audit_retention,
            log: LogConfig {
                level,
                dir: PathBuf::from(v.or("LOG_DIR", "logs")),
                format,
                max_files,
                rotate_daily: match v.or("LOG_ROTATION", "daily").to_ascii_lowercase().as_str() {
                    "daily" => true,
                    "off" => false,
                    other => {
                        return Err(ConfigError::expected("LOG_ROTATION", "daily or off", other));
                    }
                },
            },
            shutdown_timeout: v.duration("SHUTDOWN_TIMEOUT", Duration::from_secs(10))?,
            request_timeout: v.duration("REQUEST_TIMEOUT", Duration::from_secs(30))?,
            connections: ConnectionConfig {
                header_timeout: v.duration("HEADER_TIMEOUT", Duration::from_secs(10))?,
                keepalive_timeout: v.duration("KEEPALIVE_TIMEOUT", Duration::from_secs(30))?,
                body_timeout: v.duration("BODY_TIMEOUT", Duration::from_secs(30))?,
                send_timeout: v.duration("SEND_TIMEOUT", Duration::from_secs(30))?,
                tcp_keepalive: v.duration("TCP_KEEPALIVE", Duration::from_secs(60))?,
                max_connections: match v.or("MAX_CONNECTIONS", "auto") {
                    "auto" => None,
                    raw => Some(
                        raw.parse::<usize>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| {
                                ConfigError::expected(
                                    "MAX_CONNECTIONS",
                                    "auto or a number of connections of at least 1",
                                    raw,
                                )
                            })?,
                    ),
                },
                max_connections_per_ip: match v.parse(
                    "MAX_CONNECTIONS_PER_IP",
                    1000usize,
                    "a number of connections of at least 1",
                )? {
                    0 => {
                        return Err(ConfigError::expected(
                            "MAX_CONNECTIONS_PER_IP",
                            "a number of connections of at least 1",
                            "0",
                        ));
                    }
                    n => n,
                },
            },
            message_group_commit: v.bool("MESSAGE_GROUP_COMMIT", true)?,
            metrics_addr: match v.get("METRICS_ADDR") {
                None => None,
                Some(raw) => Some(raw.parse().map_err(|_| {
                    ConfigError::expected(
                        "METRICS_ADDR",
                        "an address and port such as 127.0.0.1:9464",
                        raw,
                    )
                })?),
            },
        })
    }

    /// Whether cookies must be `Secure` and logs default to JSON.
    #[must_use]
    pub fn is_production(&self) -> bool {
        self.app_env == AppEnv::Production
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_map(&map)
    }

    fn error_of(pairs: &[(&str, &str)]) -> String {
        match config(pairs) {
            Ok(_) => panic!("{pairs:?} should be refused"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = config(&[]).unwrap();
        assert_eq!(c.port, 3000);
        assert_eq!(c.host.to_string(), "127.0.0.1");
        assert_eq!(
            c.database_url,
            DatabaseUrl::Sqlite("data/chai-tapri.db".into())
        );
        assert_eq!(c.jwt_expires_in, Duration::from_secs(7 * 86_400));
        assert_eq!(c.bcrypt_cost, 12);
        assert_eq!(
            c.rate_limit.api,
            RateQuota {
                count: 100,
                window: Duration::from_secs(900)
            }
        );
        assert_eq!(
            c.rate_limit.auth,
            RateQuota {
                count: 5,
                window: Duration::from_secs(900)
            }
        );
        assert_eq!(
            c.rate_limit.messages,
            RateQuota {
                count: 30,
                window: Duration::from_secs(60)
            }
        );
        assert_eq!(c.redis_prefix, "chai:");
        assert_eq!(c.log.max_files, 14);
        assert_eq!(c.shutdown_timeout, Duration::from_secs(10));
        assert!(c.jwt_secret_generated);
        assert_eq!(c.jwt_secret.expose().len(), 64);
    }

    #[test]
    fn a_bad_value_names_the_variable_and_the_accepted_form() {
        assert!(error_of(&[("PORT", "abc")]).starts_with("PORT: expected a port number"));
        assert!(
            error_of(&[("JWT_EXPIRES_IN", "7x")])
                .starts_with("JWT_EXPIRES_IN: expected a duration")
        );
        assert!(
            error_of(&[("RATE_LIMIT_API", "lots")])
                .starts_with("RATE_LIMIT_API: expected <count>/<duration>")
        );
        assert!(
            error_of(&[("DATABASE_URL", "mysql://x")])
                .starts_with("DATABASE_URL: expected sqlite://")
        );
        assert!(error_of(&[("BCRYPT_COST", "3")]).starts_with("BCRYPT_COST"));
        assert!(error_of(&[("TRUSTED_PROXIES", "10.0.0.0/33")]).starts_with("TRUSTED_PROXIES"));
        assert!(error_of(&[("LOG_LEVEL", "loud")]).starts_with("LOG_LEVEL"));
        assert!(error_of(&[("REDIS_URL", "http://x")]).starts_with("REDIS_URL"));
        assert!(
            error_of(&[("AUDIT_RETENTION_DAYS", "-1")])
                .starts_with("AUDIT_RETENTION_DAYS: expected a number of days")
        );
    }

    #[test]
    fn admins_are_named_case_insensitively_and_retention_zero_keeps_for_ever() {
        let c = config(&[
            ("ADMIN_USERNAMES", " Asha, ,ravi "),
            ("AUDIT_RETENTION_DAYS", "0"),
        ])
        .unwrap();
        assert_eq!(c.admin_usernames, ["asha", "ravi"]);
        assert_eq!(c.audit_retention, None);
        let d = config(&[]).unwrap();
        assert!(d.admin_usernames.is_empty());
        assert_eq!(d.audit_retention, Some(Duration::from_secs(365 * 86_400)));
    }

    #[test]
    fn production_refuses_a_missing_or_short_jwt_secret() {
        assert!(error_of(&[("APP_ENV", "production")]).starts_with("JWT_SECRET: must be set"));
        let short = error_of(&[("APP_ENV", "production"), ("JWT_SECRET", "short")]);
        assert!(short.starts_with("JWT_SECRET: must be at least 32 bytes"));
        assert!(
            !short.contains("short\""),
            "the secret itself is never echoed"
        );
        let ok = config(&[("APP_ENV", "production"), ("JWT_SECRET", &"k".repeat(32))]).unwrap();
        assert!(ok.is_production());
        assert_eq!(ok.log.format, LogFormat::Json);
    }

    #[test]
    fn database_passwords_never_show_in_errors_or_debug_output() {
        let e = error_of(&[("DATABASE_URL", "mysql://bob:hunter2@db/x")]);
        assert!(!e.contains("hunter2"), "{e}");
        let c = config(&[("DATABASE_URL", "postgres://bob:hunter2@db:5432/x")]).unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("postgres://bob:***@db:5432/x"));
    }

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("45"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("2w"), Some(Duration::from_secs(1_209_600)));
        assert_eq!(parse_duration("7x"), None);
        assert_eq!(parse_duration("d"), None);
    }

    #[test]
    fn trusted_proxy_networks_match_addresses_inside_them() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let one = IpNet::parse("::1").unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("::2".parse().unwrap()));
    }
}
