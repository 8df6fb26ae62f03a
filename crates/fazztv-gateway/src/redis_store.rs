//! The Redis [`StateStore`]: budgets, rate limits and cached answers shared by every replica of
//! a gateway that names the same Redis and key prefix (`gateway.state.redis`).
//!
//! Each check is one Lua script, run atomically by the server and sent as `EVALSHA` (loaded
//! once per server), so two replicas never both get room that only one fits in. Keys, all
//! under the configured prefix:
//! - `budget:KEY:START`: a hash of what was `spent` and what is `held` in the calendar window
//!   starting at `START` (unix seconds, 0 for `total`). The window start is in the key, so a new
//!   window counts from nothing; the key expires an hour after its window ends (a settlement
//!   arriving late still finds it).
//! - `window:KEY` and `window:KEY:amounts`: a sliding window, as a sorted set of acquisition
//!   ids by the server's time in milliseconds and a hash of what each took (and their `total`);
//!   both expire one period after the last acquisition. Ids come from the counter `window-ids`.
//! - `cache:KEY`: a cached answer, set with its TTL (`PX`).
//!
//! Clocks: calendar windows are computed from the caller's wall clock (the `SystemTime` the
//! engine passes; hosts keep theirs in step with NTP, and a skewed host moves a window's edge
//! by its skew, never counts a window twice). Sliding windows use the Redis server's `TIME`
//! inside the script, the one clock all replicas share (the `Instant`s of the trait are local
//! to each process). Scripts that read `TIME` and then write need effects replication, the
//! default since Redis 5.
//!
//! Failures: when Redis cannot be asked within `timeout_ms`, reserving and acquiring answer
//! [`Refused::Unavailable`] (the engine refuses the request with `store_unavailable`, never
//! lets it through uncounted), and a cache lookup is a miss. Settlements, corrections and cache
//! writes are sent in the background on the current tokio runtime (the gateway flushes them
//! when it stops); one that fails is logged, and one not yet sent is lost only if the process
//! dies first. A lost settlement leaves its reservation counted as spent until the window
//! resets (so a budget errs on refusing).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use fazztv_core::async_trait;
use fazztv_manager::{
    ConfigError, Exhausted, RedisSettings, Refused, Registry, Reservation, StateStore,
    StoreUnavailable, Taken, Window,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisResult, Script};
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long a budget's key outlives its window, so that a settlement arriving after the window
/// ended (a long stream) still finds what it settles.
const BUDGET_KEY_MARGIN_S: u64 = 3_600;

/// Reconnection attempts per outage before a command fails: a gateway should answer promptly
/// that Redis is down rather than queue requests behind a long backoff.
const RECONNECT_RETRIES: usize = 2;

/// Holds `amount` when `spent + held + amount <= limit`. KEYS: the budget hash. ARGV: limit,
/// amount, expiry (unix seconds, 0 for never). Returns `{1, ""}`, or `{0, used}` when full.
const RESERVE: &str = r"
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local held = tonumber(redis.call('HGET', KEYS[1], 'held') or '0')
local amount = tonumber(ARGV[2])
if spent + held + amount > tonumber(ARGV[1]) then
  return {0, string.format('%.17g', spent + held)}
end
redis.call('HSET', KEYS[1], 'spent', string.format('%.17g', spent),
  'held', string.format('%.17g', held + amount))
if ARGV[3] ~= '0' then
  redis.call('EXPIREAT', KEYS[1], ARGV[3])
end
return {1, ''}
";

/// Moves a reservation from held to spent. KEYS: the budget hash. ARGV: the amount held, the
/// amount spent. A window whose key expired is left alone.
const SETTLE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local held = tonumber(redis.call('HGET', KEYS[1], 'held') or '0') - tonumber(ARGV[1])
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0') + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'held', string.format('%.17g', math.max(held, 0)),
  'spent', string.format('%.17g', spent))
return 1
";

/// Takes `amount` from a sliding window, on the server's clock. KEYS: the ids by time, their
/// amounts (and `total`), the id counter. ARGV: period (ms), limit, amount. Returns `{1, id}`,
/// or `{0, ms until it would fit}`. A request above the whole limit fits alone, as in memory.
const ACQUIRE: &str = r"
local times, amounts = KEYS[1], KEYS[2]
local period, limit, amount = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local total = tonumber(redis.call('HGET', amounts, 'total') or '0')
local gone = redis.call('ZRANGEBYSCORE', times, '-inf', now - period)
if #gone > 0 then
  -- In batches: unpack has a stack limit.
  for first = 1, #gone, 500 do
    local batch = {unpack(gone, first, math.min(first + 499, #gone))}
    for _, taken in ipairs(redis.call('HMGET', amounts, unpack(batch))) do
      total = total - (tonumber(taken) or 0)
    end
    redis.call('HDEL', amounts, unpack(batch))
  end
  redis.call('ZREMRANGEBYSCORE', times, '-inf', now - period)
  redis.call('HSET', amounts, 'total', total)
end
local counted = math.min(amount, limit)
if total + counted > limit then
  -- Room comes as the oldest acquisitions leave the window.
  local entries = redis.call('ZRANGE', times, 0, -1, 'WITHSCORES')
  for index = 1, #entries, 2 do
    total = total - (tonumber(redis.call('HGET', amounts, entries[index])) or 0)
    if total + counted <= limit then
      return {0, tonumber(entries[index + 1]) + period - now}
    end
  end
  return {0, period}
end
local id = redis.call('INCR', KEYS[3])
redis.call('ZADD', times, now, id)
redis.call('HSET', amounts, id, amount, 'total', total + amount)
redis.call('PEXPIRE', times, period)
redis.call('PEXPIRE', amounts, period)
return {1, id}
";

/// Replaces what an acquisition took. KEYS: the amounts hash. ARGV: id, amount. One that left
/// the window is left alone.
const CORRECT: &str = r"
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'total', tonumber(ARGV[2]) - tonumber(old))
return 1
";

/// The scripts, hashed once.
struct Scripts {
    reserve: Script,
    settle: Script,
    acquire: Script,
    correct: Script,
}

/// A [`StateStore`] in Redis, shared by every process that names the same server, database and
/// prefix. Cheap to share (`Arc`); its connections reconnect by themselves. `Debug` shows the
/// server's address, never the URL's password.
pub struct RedisStore {
    /// Multiplexed connections, each carrying many commands at once, used in turn.
    pool: Vec<ConnectionManager>,
    next: AtomicUsize,
    prefix: String,
    timeout: Duration,
    /// The server, for messages: its address and database, without credentials.
    server: String,
    scripts: Arc<Scripts>,
    /// The background sends not yet answered, to wait for ([`StateStore::flush`]).
    pending: Arc<Pending>,
}

/// A count of background sends, and a signal each time one ends.
#[derive(Debug, Default)]
struct Pending {
    count: AtomicUsize,
    ended: Notify,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("server", &self.server)
            .field("prefix", &self.prefix)
            .field("connections", &self.pool.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The store `registry`'s `gateway.state` names: Redis, shared by the replicas, or by default
/// one in this process keeping `cache.max_entries` answers. Made for
/// [`ProviderManager::load_with_store`](fazztv_manager::ProviderManager::load_with_store).
///
/// # Errors
/// [`ConfigError::StateStore`] when the Redis URL's variable is unset, the URL is malformed or
/// of an unsupported scheme, or this is called outside a tokio runtime.
pub fn state_store(registry: &Registry) -> Result<Arc<dyn StateStore>, ConfigError> {
    match &registry.gateway().state {
        fazztv_manager::StateSettings::Memory => Ok(Arc::new(
            fazztv_manager::InMemoryStore::with_max_entries(registry.cache().max_entries),
        )),
        fazztv_manager::StateSettings::Redis(settings) => {
            let url = match (&settings.url, &settings.url_env) {
                (Some(url), _) => url.clone(),
                (None, Some(variable)) => {
                    registry.environment().var(variable).ok_or_else(|| {
                        state_error(format!(
                            "`url_env` names `{variable}`, which is not set; export it with \
                             the Redis URL (`redis://[:PASSWORD@]HOST:PORT/DB`)"
                        ))
                    })?
                }
                (None, None) => {
                    return Err(state_error(
                        "set `url` or `url_env` in `gateway.state.redis`",
                    ));
                }
            };
            Ok(Arc::new(RedisStore::new(&url, settings)?))
        }
        other => Err(state_error(format!(
            "{other:?} is not supported by this gateway"
        ))),
    }
}

fn state_error(message: impl Into<String>) -> ConfigError {
    ConfigError::StateStore {
        message: message.into(),
    }
}

impl RedisStore {
    /// A store in the Redis at `url` (`redis://…`, `unix://…` or `redis+unix://…`: the URL
    /// already read from `settings`' `url` or `url_env`), with the prefix, timeout and pool
    /// size of `settings`. Connects on first use, so it never waits here; it must be made
    /// inside a tokio runtime, where its connections live.
    ///
    /// # Errors
    /// [`ConfigError::StateStore`] for a malformed URL, `rediss://` (TLS is not built in), or
    /// no tokio runtime. The message never quotes the URL.
    pub fn new(url: &str, settings: &RedisSettings) -> Result<Self, ConfigError> {
        if ["rediss:", "valkeys:"].iter().any(|scheme| {
            url.get(..scheme.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(scheme))
        }) {
            return Err(state_error(
                "TLS (`rediss://`) is not supported by this build; reach Redis over a private \
                 network or a unix socket (`unix:///path/redis.sock`), or through a TLS tunnel",
            ));
        }
        let client = redis::Client::open(url).map_err(|error| {
            state_error(format!(
                "the Redis URL is not valid ({error}); expected \
                 `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` or `unix:///PATH/redis.sock`"
            ))
        })?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(state_error(
                "a Redis store must be made inside a tokio runtime, where its connections live",
            ));
        }
        let info = client.get_connection_info();
        let server = format!(
            "Redis at {} (database {})",
            info.addr(),
            info.redis_settings().db()
        );
        let timeout = Duration::from_millis(settings.timeout_ms.max(1));
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(RECONNECT_RETRIES);
        let pool = (0..settings.pool_size.max(1))
            .map(|_| ConnectionManager::new_lazy_with_config(client.clone(), config.clone()))
            .collect::<RedisResult<Vec<_>>>()
            .map_err(|error| state_error(format!("cannot set up {server}: {error}")))?;
        Ok(Self {
            pool,
            next: AtomicUsize::new(0),
            prefix: settings.prefix.clone(),
            timeout,
            server,
            scripts: Arc::new(Scripts {
                reserve: Script::new(RESERVE),
                settle: Script::new(SETTLE),
                acquire: Script::new(ACQUIRE),
                correct: Script::new(CORRECT),
            }),
            pending: Arc::default(),
        })
    }

    /// The next connection of the pool.
    fn connection(&self) -> ConnectionManager {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        self.pool[index].clone()
    }

    fn budget_key(&self, key: &str, window_start: u64) -> String {
        format!("{}budget:{key}:{window_start}", self.prefix)
    }

    /// The keys of a sliding window: its ids by time, and their amounts.
    fn window_keys(&self, key: &str) -> (String, String) {
        let times = format!("{}window:{key}", self.prefix);
        let amounts = format!("{times}:amounts");
        (times, amounts)
    }

    /// Runs `operation` within the timeout; a failure says which server, what was being done
    /// (`doing`, only written then: most requests ask on their way) and what to check.
    async fn ask<T>(
        &self,
        doing: impl FnOnce() -> String,
        operation: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreUnavailable> {
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(StoreUnavailable::new(format!(
                "the state store ({}) failed while {}: {error}; check that Redis is up and \
                 reachable",
                self.server,
                doing()
            ))),
            Err(_) => Err(StoreUnavailable::new(format!(
                "the state store ({}) did not answer within {} ms while {}; check that Redis is \
                 up and reachable",
                self.server,
                self.timeout.as_millis(),
                doing()
            ))),
        }
    }

    /// Sends `operation` in the background, for the trait's methods that may not wait; a
    /// failure is logged.
    fn in_background(
        &self,
        doing: String,
        operation: impl Future<Output = RedisResult<()>> + Send + 'static,
    ) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                target: "fazztv_gateway::state",
                "{doing}: not sent to the state store ({}), as no tokio runtime is running",
                self.server
            );
            return;
        };
        let (timeout, server, pending) = (self.timeout, self.server.clone(), self.pending.clone());
        pending.count.fetch_add(1, Ordering::AcqRel);
        runtime.spawn(async move {
            let failure = match tokio::time::timeout(timeout, operation).await {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(error.to_string()),
                Err(_) => Some(format!("no answer within {} ms", timeout.as_millis())),
            };
            if let Some(error) = failure {
                tracing::warn!(
                    target: "fazztv_gateway::state",
                    "the state store ({server}) failed while {doing}: {error}"
                );
            }
            pending.count.fetch_sub(1, Ordering::AcqRel);
            pending.ended.notify_waiters();
        });
    }
}

#[async_trait]
impl StateStore for RedisStore {
    async fn reserve(
        &self,
        key: &str,
        window: Window,
        now: SystemTime,
        limit: f64,
        amount: f64,
    ) -> Result<Reservation, Refused<Exhausted>> {
        let (start, end) = window.bounds(now);
        let budget = self.budget_key(key, start);
        let expires = end.map_or(0, |end| end + BUDGET_KEY_MARGIN_S);
        let mut connection = self.connection();
        let (fits, used): (i64, String) = self
            .ask(
                || format!("reserving against budget `{key}`"),
                self.scripts
                    .reserve
                    .key(&budget)
                    .arg(limit)
                    .arg(amount)
                    .arg(expires)
                    .invoke_async(&mut connection),
            )
            .await
            .map_err(Refused::Unavailable)?;
        if fits == 1 {
            return Ok(Reservation::new(key, start, amount));
        }
        let used: f64 = used.parse().unwrap_or(limit);
        Err(Refused::Full(Exhausted::after(limit, used, end)))
    }

    fn settle(&self, reservation: Reservation, spent: f64) {
        let budget = self.budget_key(reservation.key(), reservation.window_start());
        let (scripts, mut connection) = (self.scripts.clone(), self.connection());
        self.in_background(
            format!("settling a reservation of budget `{}`", reservation.key()),
            async move {
                scripts
                    .settle
                    .key(budget)
                    .arg(reservation.amount())
                    .arg(spent)
                    .invoke_async::<i64>(&mut connection)
                    .await
                    .map(drop)
            },
        );
    }

    async fn used(
        &self,
        key: &str,
        window: Window,
        now: SystemTime,
    ) -> Result<f64, StoreUnavailable> {
        let (start, _) = window.bounds(now);
        let mut connection = self.connection();
        let (spent, held): (Option<String>, Option<String>) = self
            .ask(
                || format!("reading budget `{key}`"),
                redis::cmd("HMGET")
                    .arg(self.budget_key(key, start))
                    .arg("spent")
                    .arg("held")
                    .query_async(&mut connection),
            )
            .await?;
        let amount = |value: Option<String>| value.and_then(|value| value.parse::<f64>().ok());
        Ok(amount(spent).unwrap_or(0.0) + amount(held).unwrap_or(0.0))
    }

    async fn acquire(
        &self,
        key: &str,
        period: Duration,
        _now: Instant,
        limit: u64,
        amount: u64,
    ) -> Result<Taken, Refused<Duration>> {
        let (times, amounts) = self.window_keys(key);
        let ids = format!("{}window-ids", self.prefix);
        let period_ms = u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut connection = self.connection();
        let (taken, value): (i64, u64) = self
            .ask(
                || format!("counting rate limit `{key}`"),
                self.scripts
                    .acquire
                    .key(&times)
                    .key(&amounts)
                    .key(&ids)
                    .arg(period_ms)
                    .arg(limit)
                    .arg(amount)
                    .invoke_async(&mut connection),
            )
            .await
            .map_err(Refused::Unavailable)?;
        if taken == 1 {
            Ok(Taken::new(key, value))
        } else {
            Err(Refused::Full(Duration::from_millis(value.max(1))))
        }
    }

    fn correct(&self, taken: Taken, amount: u64) {
        let (_, amounts) = self.window_keys(taken.key());
        let (scripts, mut connection) = (self.scripts.clone(), self.connection());
        self.in_background(
            format!("correcting rate limit `{}`", taken.key()),
            async move {
                scripts
                    .correct
                    .key(amounts)
                    .arg(taken.id())
                    .arg(amount)
                    .invoke_async::<i64>(&mut connection)
                    .await
                    .map(drop)
            },
        );
    }

    async fn cache_get(&self, key: &str, _now: Instant) -> Option<Vec<u8>> {
        let mut connection = self.connection();
        let cached = self
            .ask(
                || String::from("looking up a cached answer"),
                redis::cmd("GET")
                    .arg(format!("{}cache:{key}", self.prefix))
                    .query_async::<Option<Vec<u8>>>(&mut connection),
            )
            .await;
        cached.unwrap_or_else(|outage| {
            tracing::warn!(target: "fazztv_gateway::state", "{outage}; answered as a cache miss");
            None
        })
    }

    fn cache_put(&self, key: &str, value: Vec<u8>, ttl: Duration, _now: Instant) {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let cached = format!("{}cache:{key}", self.prefix);
        let mut connection = self.connection();
        self.in_background(String::from("caching an answer"), async move {
            redis::cmd("SET")
                .arg(cached)
                .arg(value)
                .arg("PX")
                .arg(ttl_ms)
                .query_async::<()>(&mut connection)
                .await
        });
    }

    /// Waits until every settlement, correction and cache write sent so far has been answered
    /// (or has failed): after it, reads see them.
    async fn flush(&self) {
        loop {
            // Made before the check, so that an end between the two is not missed.
            let ended = self.pending.ended.notified();
            if self.pending.count.load(Ordering::Acquire) == 0 {
                return;
            }
            ended.await;
        }
    }
}
