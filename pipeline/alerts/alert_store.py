"""Rules, firings and the delivery outbox in Redis (docs/architecture.md, "Alerts").

Keys (namespace `ns`; `{alerts}` is a Redis Cluster hash tag, so every transaction and script below runs on
one slot):
    ns:{alerts}:rules                    hash    rule id -> AlertRule JSON (webhook credentials sealed)
    ns:{alerts}:firing:<id>              string  Firing JSON (evidence and delivery state)
    ns:{alerts}:firings                  zset    firing id, score its footage start (ms)
    ns:{alerts}:rule:<id>:firings        zset    the rule's firings, score footage start
    ns:{alerts}:rule:<id>:cam:<camera>   zset    the same per camera: what the cooldown checks
    ns:{alerts}:log                      stream  one entry per firing, its JSON as recorded: the SSE stream's ids
    ns:{alerts}:outbox:<rule id>         list    firing ids awaiting delivery, oldest first (order per receiver)
    ns:{alerts}:outboxes                 set     rule ids whose outbox may hold firings
    ns:{alerts}:outbox:<rule id>:lock    string  the worker delivering that outbox (expiring)
    ns:{alerts}:dead                     zset    dead-lettered firing ids, score when
    ns:{alerts}:created                  zset    firing ids, score when recorded (server clock): what retention ages
A firing is recorded by one Lua script: the id check, the cooldown check and every write happen at once, so
neither a re-evaluated clip nor two replicas can fire twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import partial

import redis

from pipeline.alerts.firings import Firing
from pipeline.alerts.rules import AlertRule
from pipeline.errors import UnknownFiring, UnknownRule
from pipeline.store.connection import RetryPolicy
from pipeline.store.secrets import SecretBox

LOG_MAXLEN = 100_000  # firings the SSE stream can replay

RECORD = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local start, cooldown = tonumber(ARGV[3]), tonumber(ARGV[4])
if cooldown > 0 then
  local near = redis.call('ZRANGEBYSCORE', KEYS[4], '(' .. (start - cooldown), '(' .. (start + cooldown), 'LIMIT', 0, 1)
  if #near > 0 then return -1 end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], start, ARGV[1])
redis.call('ZADD', KEYS[3], start, ARGV[1])
redis.call('ZADD', KEYS[4], start, ARGV[1])
redis.call('ZADD', KEYS[8], ARGV[8], ARGV[1])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[7], '*', 'firing', ARGV[2])
if ARGV[6] == '1' then
  redis.call('RPUSH', KEYS[6], ARGV[1])
  redis.call('SADD', KEYS[7], ARGV[5])
end
return 1
"""
RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
FORGET_EMPTY = "if redis.call('LLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end return 1"


@dataclass(frozen=True)
class LoggedFiring:
    event_id: str  # the log entry id: what SSE clients resume from (Last-Event-ID)
    firing: Firing


@dataclass(frozen=True)
class AlertStats:
    rules: int
    firings: int
    pending: int  # firings waiting in outboxes
    dead: int


class AlertStore:
    def __init__(
        self, client: redis.Redis, namespace: str, secrets: SecretBox, where: str = "", retry: RetryPolicy | None = None
    ):
        self.client = client
        self.secrets = secrets
        self.prefix = f"{namespace}:{{alerts}}"
        self.where = where
        self.retry = retry or RetryPolicy()
        self._record = client.register_script(RECORD)
        self._release = client.register_script(RELEASE)
        self._forget_empty = client.register_script(FORGET_EMPTY)
        self._parsed: dict[bytes, AlertRule] = {}  # stored rule JSON -> the rule

    def _run(self, operation, what: str):
        return self.retry.run(operation, what, self.where)

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def now_ms(self) -> int:
        """The Redis server's clock: the one clock every replica shares (and the clip log's entry ids use)."""
        seconds, micros = self._run(self.client.time, "reading the server time")
        return seconds * 1000 + micros // 1000

    # rules

    def put_rule(self, rule: AlertRule) -> None:
        self._run(lambda: self.client.hset(self.key("rules"), rule.rule_id, rule.to_json(self.secrets.seal)), "saving")

    def rule(self, rule_id: str) -> AlertRule:
        raw = self._run(lambda: self.client.hget(self.key("rules"), rule_id), f"reading rule {rule_id}")
        if raw is None:
            raise UnknownRule(f"no alert rule {rule_id} (never created, or deleted)")
        return AlertRule.from_json(raw, self.secrets.open)

    def rules(self) -> list[AlertRule]:
        """Every rule, read on each call (any replica may change them); a rule whose stored JSON is unchanged is
        not parsed and unsealed again (that took 8 ms for 100 rules, per evaluated clip)."""
        raws = self._run(lambda: self.client.hvals(self.key("rules")), "listing rules")
        known = self._parsed
        self._parsed = {raw: known.get(raw) or AlertRule.from_json(raw, self.secrets.open) for raw in raws}
        return sorted(self._parsed.values(), key=lambda r: r.created_ms)

    def count_rules(self) -> int:
        return self._run(lambda: self.client.hlen(self.key("rules")), "counting rules")

    def delete_rule(self, rule_id: str) -> None:
        """The rule goes; its firings stay, and any it had not delivered are cancelled by the delivery worker."""
        if not self._run(lambda: self.client.hdel(self.key("rules"), rule_id), f"deleting rule {rule_id}"):
            raise UnknownRule(f"no alert rule {rule_id} (never created, or deleted)")

    # firings

    def record(self, firing: Firing, rule: AlertRule) -> bool:
        """Store a firing, its log entry and (with a webhook) its outbox entry, unless a firing with its id exists
        or one of the rule's firings on the camera lies within the cooldown of it. True when recorded."""
        return self.record_all([(firing, rule)]) == [True]

    def record_all(self, firings: list[tuple[Firing, AlertRule]]) -> list[bool]:
        """`record` for several firings in one round trip (one fsync), in order: a later one sees the earlier."""

        def write() -> list[bool]:
            with self.client.pipeline(transaction=False) as pipe:
                for firing, rule in firings:
                    self._record(*self._record_call(firing, rule), client=pipe)
                return [reply == 1 for reply in pipe.execute()]

        return self._run(write, f"recording {len(firings)} firing(s)") if firings else []

    def _record_call(self, firing: Firing, rule: AlertRule) -> tuple[list[str], list]:
        keys = [
            self.key("firing", firing.firing_id),
            self.key("firings"),
            self.key("rule", rule.rule_id, "firings"),
            self.key("rule", rule.rule_id, "cam", firing.camera_id),
            self.key("log"),
            self.key("outbox", rule.rule_id),
            self.key("outboxes"),
            self.key("created"),
        ]
        args = [firing.firing_id, firing.to_json(), firing.start_ms, round(rule.cooldown_s * 1000), rule.rule_id,
                int(firing.delivery.state == "pending"), LOG_MAXLEN, firing.created_ms]  # fmt: skip
        return keys, args

    def firing(self, firing_id: str) -> Firing:
        raw = self._run(lambda: self.client.get(self.key("firing", firing_id)), f"reading firing {firing_id}")
        if raw is None:
            raise UnknownFiring(f"no firing {firing_id}")
        return Firing.from_json(raw)

    def save_firing(self, firing: Firing) -> None:
        self._run(lambda: self.client.set(self.key("firing", firing.firing_id), firing.to_json()), "saving a firing")

    def firings(self, rule_id: str | None = None, since_ms: int | None = None, limit: int = 100) -> list[Firing]:
        """Firings by footage start, oldest first, from `since_ms` on (one rule's or all)."""
        index = self.key("firings") if rule_id is None else self.key("rule", rule_id, "firings")

        def read() -> list[bytes | None]:
            ids = self.client.zrangebyscore(index, "-inf" if since_ms is None else since_ms, "+inf", 0, limit)
            return self.client.mget([self.key("firing", i.decode()) for i in ids]) if ids else []

        return [Firing.from_json(raw) for raw in self._run(read, "listing firings") if raw is not None]

    def dead_letters(self, limit: int = 100) -> list[Firing]:
        def read() -> list[bytes | None]:
            ids = self.client.zrange(self.key("dead"), 0, limit - 1)
            return self.client.mget([self.key("firing", i.decode()) for i in ids]) if ids else []

        return [Firing.from_json(raw) for raw in self._run(read, "listing dead letters") if raw is not None]

    def log_after(self, event_id: str, block_ms: int, count: int = 100) -> list[LoggedFiring]:
        """Log entries after `event_id` ("0" for all, "$" for new ones only), waiting up to `block_ms` for one."""
        reply = self._run(
            lambda: self.client.xread({self.key("log"): event_id}, count=count, block=block_ms), "reading the log"
        )
        entries = reply[0][1] if reply else []
        return [LoggedFiring(entry_id.decode(), Firing.from_json(fields[b"firing"])) for entry_id, fields in entries]

    def last_event_id(self) -> str:
        entries = self._run(lambda: self.client.xrevrange(self.key("log"), count=1), "reading the log")
        return entries[0][0].decode() if entries else "0"

    # the outbox

    def outboxes(self) -> list[str]:
        return sorted(m.decode() for m in self._run(lambda: self.client.smembers(self.key("outboxes")), "outboxes"))

    def outbox_head(self, rule_id: str) -> str | None:
        """The oldest firing id waiting in the rule's outbox; forgets an empty outbox."""
        outbox = self.key("outbox", rule_id)
        head = self._run(lambda: self.client.lindex(outbox, 0), "reading an outbox")
        if head is None:
            self._run(lambda: self._forget_empty([outbox, self.key("outboxes")], [rule_id]), "forgetting an outbox")
            return None
        return head.decode()

    def outbox_ids(self, rule_id: str) -> list[str]:
        return [i.decode() for i in self._run(lambda: self.client.lrange(self.key("outbox", rule_id), 0, -1), "outbox")]

    def settle(self, rule_id: str, firing: Firing, at_ms: int) -> None:
        """The head firing's delivery ended (delivered, dead or cancelled): save it and take it off the outbox."""

        def write() -> None:
            with self.client.pipeline(transaction=True) as pipe:
                pipe.set(self.key("firing", firing.firing_id), firing.to_json())
                pipe.lrem(self.key("outbox", rule_id), 1, firing.firing_id)
                if firing.delivery.state == "dead":
                    pipe.zadd(self.key("dead"), {firing.firing_id: at_ms})
                pipe.execute()

        self._run(write, f"settling firing {firing.firing_id}")

    def prune(self, before_ms: int, batch: int = 256) -> int:
        """Forget firings recorded before `before_ms` (server clock), with their index entries, except those still
        waiting for delivery; returns how many went. Cooldowns only look at the firings that are left."""

        def one_batch(offset: int) -> tuple[int, int]:  # (pruned, kept); (0, 0) once none is left
            created = self.client.zrangebyscore(self.key("created"), "-inf", f"({before_ms}", offset, batch)
            ids = [i.decode() for i in created]
            raws = self.client.mget([self.key("firing", i) for i in ids]) if ids else []
            pruned = kept = 0
            with self.client.pipeline(transaction=True) as pipe:
                for firing_id, raw in zip(ids, raws, strict=True):
                    firing = None if raw is None else Firing.from_json(raw)
                    if firing is not None and firing.delivery.state == "pending":
                        kept += 1  # still in an outbox: it stays, and so does its place in the index
                        continue
                    if firing is not None:
                        pipe.delete(self.key("firing", firing_id))
                        pipe.zrem(self.key("rule", firing.rule_id, "firings"), firing_id)
                        pipe.zrem(self.key("rule", firing.rule_id, "cam", firing.camera_id), firing_id)
                    for index in ("firings", "dead", "created"):
                        pipe.zrem(self.key(index), firing_id)
                    pruned += 1
                pipe.execute()
            return pruned, kept

        total, offset = 0, 0
        while True:
            pruned, kept = self._run(partial(one_batch, offset), "pruning old firings")
            if not pruned and not kept:
                return total
            total, offset = total + pruned, offset + kept

    def drop_from_outbox(self, rule_id: str, firing_id: str) -> None:
        self._run(lambda: self.client.lrem(self.key("outbox", rule_id), 1, firing_id), "dropping from an outbox")

    def stats(self) -> AlertStats:
        def read():
            with self.client.pipeline(transaction=False) as pipe:
                pipe.hlen(self.key("rules"))
                pipe.zcard(self.key("firings"))
                pipe.zcard(self.key("dead"))
                pipe.smembers(self.key("outboxes"))
                rules, firings, dead, outboxes = pipe.execute()
            with self.client.pipeline(transaction=False) as pipe:
                for rule_id in outboxes:
                    pipe.llen(self.key("outbox", rule_id.decode()))
                pending = sum(pipe.execute()) if outboxes else 0
            return AlertStats(rules, firings, pending, dead)

        return self._run(read, "reading alert statistics")

    # one deliverer per outbox at a time

    def try_lock(self, rule_id: str, ttl_s: float) -> str | None:
        token = uuid.uuid4().hex
        taken = self._run(
            lambda: self.client.set(self.key("outbox", rule_id, "lock"), token, nx=True, px=round(ttl_s * 1000)),
            "locking an outbox",
        )
        return token if taken else None

    def unlock(self, rule_id: str, token: str) -> None:
        self._run(lambda: self._release([self.key("outbox", rule_id, "lock")], [token]), "unlocking an outbox")
