//! The Lua scripts of the Redis store. Each touches one key, so each is atomic in every mode,
//! a cluster's included (see "Atomicity" in the parent's doc); the steps that span keys are
//! ordered in Rust.

use std::sync::LazyLock;

use redis::Script;

/// Stores a session: the record, its IdP tokens apart (none when `ARGV[4]` is empty), no
/// revocation flag, the expiry. One key, so atomic.
pub(super) static PUT_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'record', ARGV[1])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'idpTokens', ARGV[4]) end
if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'revoked', '1') end
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return 1",
    )
});

/// Adds a session to its user's set with a score above every other member's (creation order,
/// even within one second), keeps the set until its latest session expires, and returns the
/// members oldest first.
pub(super) static ADD_TO_USER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local score = tonumber(ARGV[1]) * 1000
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] ~= nil and tonumber(last[2]) >= score then score = tonumber(last[2]) + 1 end
redis.call('ZADD', KEYS[1], score, ARGV[2])
local wanted = tonumber(ARGV[3]) - tonumber(ARGV[4])
if wanted > 0 and redis.call('TTL', KEYS[1]) < wanted then
  redis.call('EXPIREAT', KEYS[1], ARGV[3])
end
return redis.call('ZRANGE', KEYS[1], 0, -1)",
    )
});

/// Flags a session revoked; returns its record when this call revoked it, nil when it was
/// missing or already revoked. Keeps the key's expiry.
pub(super) static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local rec = redis.call('HGET', KEYS[1], 'record')
if not rec then return false end
if redis.call('HSETNX', KEYS[1], 'revoked', '1') == 0 then return false end
return rec",
    )
});

/// Replaces the refresh hash in a live session's record if it is still `ARGV[1]` (compare and
/// set, one key, so atomic); 1 when replaced.
pub(super) static ROTATE_REFRESH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('HEXISTS', KEYS[1], 'revoked') == 1 then return 0 end
local rec = redis.call('HGET', KEYS[1], 'record')
if not rec then return 0 end
local s = cjson.decode(rec)
if s['refreshHash'] ~= ARGV[1] then return 0 end
s['refreshHash'] = ARGV[2]
redis.call('HSET', KEYS[1], 'record', cjson.encode(s))
return 1",
    )
});

/// A refresh with a grace window (see `Sessions::rotate_refresh_graced`), one key, so atomic.
/// ARGV: old hash, new hash, sealed pair (base64), grace end, new session end ('' keeps it),
/// now. Returns {1} rotated, {2, pair} a repeat within the window, {0} refused. The previous
/// hash, the window's end and the sealed pair sit in the session's hash beside `record`.
pub(super) static ROTATE_GRACED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('HEXISTS', KEYS[1], 'revoked') == 1 then return {0} end
local rec = redis.call('HGET', KEYS[1], 'record')
if not rec then return {0} end
local s = cjson.decode(rec)
local now = tonumber(ARGV[6])
if tonumber(s['expiresAt']) <= now then return {0} end
if s['refreshHash'] == ARGV[1] then
  s['refreshHash'] = ARGV[2]
  if ARGV[5] ~= '' then s['expiresAt'] = tonumber(ARGV[5]) end
  redis.call('HSET', KEYS[1], 'record', cjson.encode(s), 'prevHash', ARGV[1],
    'graceUntil', ARGV[4], 'gracePair', ARGV[3])
  if ARGV[5] ~= '' then redis.call('EXPIREAT', KEYS[1], ARGV[5]) end
  return {1}
end
local prev = redis.call('HMGET', KEYS[1], 'prevHash', 'graceUntil', 'gracePair')
if prev[1] == ARGV[1] and tonumber(prev[2] or '0') > now and prev[3] then
  return {2, prev[3]}
end
return {0}",
    )
});

/// Keeps a user's session set at least until `ARGV[1]` (a session's lifetime slid past it).
pub(super) static KEEP_USER_SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local ttl = redis.call('TTL', KEYS[1])
local wanted = tonumber(ARGV[1]) - tonumber(ARGV[2])
if ttl >= 0 and ttl < wanted then redis.call('EXPIREAT', KEYS[1], ARGV[1]) end
return 1",
    )
});

/// Raises each session's last activity, `KEYS[i]`, to `ARGV[i]` (never lowers it) and keeps
/// it a day. Any number of sessions in one call (all in one slot, in cluster mode).
pub(super) static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"for i, key in ipairs(KEYS) do
  local cur = tonumber(redis.call('GET', key) or '0')
  if tonumber(ARGV[i]) > cur then redis.call('SET', key, ARGV[i]) end
  redis.call('EXPIRE', key, 86400)
end
return #KEYS",
    )
});

/// One request against a login rate-limit bucket (`limits::gcra`, the same rule), on the
/// server's clock so that every instance counts alike: returns -1 when it passes (the bucket
/// moves on and expires when it is full again), else the milliseconds to wait.
/// ARGV: emission, tolerance (ms).
pub(super) static SPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tolerance then return tat - now - tolerance end
local next = tat + emission
redis.call('SET', KEYS[1], next, 'PX', next - now)
return -1",
    )
});
