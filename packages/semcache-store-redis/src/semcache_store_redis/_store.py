"""`RedisResponseStore`: stored answers and the exact-match index in Redis or Redis Cluster."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from semcache.tags import Tag, entry_tags
from semcache.types import Entry, decode_entry, encode_entry

__all__ = ["RedisResponseStore", "key_prefix"]

log = logging.getLogger("semcache")

_TAG_SAFE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_QHASH_LEN = 32  # hex digits of the exact-key hash, the head of each partition member
_BATCH = 500
# Aliases one entry keeps at most (as the embedded store): a hot entry met by a long tail
# of one-off paraphrases stops gathering them.
_MAX_ALIASES = 64
# Reads of an entry after a delete, to put back the keys of a new answer stored meanwhile
# (RedisResponseStore._unindex_deleted): more than two only while other clients keep
# writing that very entry.
_REINDEX_ROUNDS = 4
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

# Add a member to a sorted set scored by its deadline in ms ('' = none); the set lives as
# long as its latest member, and members past their deadline are dropped. With ``gt``, a
# member's score only ever rises (a tag keeps its partition's latest deadline).
_ADD_UNTIL = """
local function add_until(key, member, deadline, now, gt)
  if deadline == '' then
    redis.call('ZADD', key, 'inf', member)
    redis.call('PERSIST', key)
  else
    local fresh = redis.call('EXISTS', key) == 0
    if gt then
      redis.call('ZADD', key, 'GT', deadline, member)
    else
      redis.call('ZADD', key, deadline, member)
    end
    local left = redis.call('PTTL', key)
    if fresh or (left >= 0 and tonumber(deadline) - tonumber(now) > left) then
      redis.call('PEXPIREAT', key, deadline)
    end
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. now)
end
"""

# Exact key and partition members of one entry, in one slot (same hash tag): written
# together, atomically, on a single server and on Redis Cluster alike. With ARGV[5], an
# exact key that names another entry is left to it (the entry is still a member).
# KEYS: exact key, members; ARGV: entry id, member, deadline ms ('' = none), now ms,
# '1' to leave another entry's exact key ('' = take it).
_INDEX = (
    _ADD_UNTIL
    + """
local holder = redis.call('GET', KEYS[1])
if ARGV[5] == '' or not holder or holder == ARGV[1] then
  if ARGV[3] == '' then
    redis.call('SET', KEYS[1], ARGV[1])
  else
    redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[3])
  end
end
add_until(KEYS[2], ARGV[2], ARGV[3], ARGV[4], false)
return 1
"""
)

# Drop one entry's exact key (only while it still names this entry) and membership,
# and the aliases read from its alias set (each only while it still names this entry).
# KEYS: exact key, members, alias set, alias exact keys...; ARGV: entry id, member ('':
# keep the entry's own key and membership), alias qhashes (one per alias key).
_UNINDEX = """
if ARGV[2] ~= '' then
  if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
  redis.call('ZREM', KEYS[2], ARGV[2])
end
for i = 4, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
  redis.call('ZREM', KEYS[2], ARGV[i - 1] .. ARGV[1])
  redis.call('SREM', KEYS[3], ARGV[i - 1])
end
if redis.call('SCARD', KEYS[3]) == 0 then redis.call('DEL', KEYS[3]) end
return 1
"""

# One more exact key for an entry (a paraphrase that hit it), unless the text already
# names another entry; it expires with the entry and is listed in the entry's alias set
# and the partition's members, so delete and flush find it.
# KEYS: alias exact key, members, alias set; ARGV: entry id, member, deadline ms ('' =
# none), now ms, alias qhash, most aliases per entry.
_ALIAS = (
    _ADD_UNTIL
    + """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
if redis.call('SISMEMBER', KEYS[3], ARGV[5]) == 0
   and redis.call('SCARD', KEYS[3]) >= tonumber(ARGV[6]) then
  return 0
end
redis.call('SADD', KEYS[3], ARGV[5])
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('PERSIST', KEYS[3])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[3])
  redis.call('PEXPIREAT', KEYS[3], ARGV[3])
end
add_until(KEYS[2], ARGV[2], ARGV[3], ARGV[4], false)
return 1
"""
)

# An exact hit in one round trip on a single server: the exact key, then the entry it
# names. (On Redis Cluster the entry lives in another slot: two calls.)
# KEYS: exact key; ARGV: entry key prefix.
_EXACT = """
local id = redis.call('GET', KEYS[1])
if not id then return false end
return redis.call('GET', ARGV[1] .. id)
"""

# An entry's new blob, written only over the very blob it was computed from (same SHA-1),
# with the entry's expiry; a missing key is never created.
# KEYS: entry key; ARGV: SHA-1 of the blob read, new blob.
_SWAP = """
local blob = redis.call('GET', KEYS[1])
if not blob or redis.sha1hex(blob) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
"""

# An entry deleted only while it is the very blob it was read as (same SHA-1); one key,
# so it runs on Redis Cluster as it does on a single server.
# KEYS: entry key; ARGV: SHA-1 of the blob read.
_DROP = """
local blob = redis.call('GET', KEYS[1])
if not blob or redis.sha1hex(blob) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""

# Record that a partition carries one tag (model, path, tenant, credential), for
# partitions_where. Members are partitions, scored by their latest entry's deadline.
# KEYS: tag key; ARGV: partition, deadline ms ('' = none), now ms.
_TAG = (
    _ADD_UNTIL
    + """
add_until(KEYS[1], ARGV[1], ARGV[2], ARGV[3], true)
return 1
"""
)

# A partition flush works through the partition's members a batch at a time, leaving
# every entry it has not deleted yet a member, so that a flush cut off at any point (its
# time budget, a dropped connection) is finished by the next one. Per batch: FORGET the
# entries' exact keys and alias sets, delete their payloads (other slots), then RELEASE
# the members. A member is released only while its exact key does not name its entry: an
# answer stored again under that id after FORGET has written that key back (its payload
# first), and keeps its membership (and its key).

# KEYS: exact key of each member, then the alias sets; ARGV: each member's entry id.
# An exact key is deleted only while it names its member's entry.
_FORGET = """
local n = #ARGV
for i = 1, n do
  if redis.call('GET', KEYS[i]) == ARGV[i] then redis.call('DEL', KEYS[i]) end
end
for i = n + 1, #KEYS do
  redis.call('DEL', KEYS[i])
end
return 1
"""

# KEYS: members, exact key of each member; ARGV: length of the exact-key hash, members.
_RELEASE = """
local head = tonumber(ARGV[1])
for i = 2, #KEYS do
  local member = ARGV[i]
  if redis.call('GET', KEYS[i]) ~= string.sub(member, head + 1) then
    redis.call('ZREM', KEYS[1], member)
  end
end
return 1
"""


def key_prefix(prefix: str, model_id: str, dimension: int) -> str:
    """Key prefix of one embedder configuration: readable, unique, free of hash tags."""
    digest = hashlib.blake2b(
        f"{prefix}\x00{model_id}\x00{dimension}".encode(), digest_size=5
    ).hexdigest()
    clean = re.sub(r"[{}\s]+", "_", prefix) or "semcache"
    model = re.sub(r"[^A-Za-z0-9_.\-/]+", "_", model_id)[:40]
    return f"{clean}:{model}:{dimension}:{digest}"


def _hash(*parts: str) -> str:
    blob = "\x00".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(blob, digest_size=_QHASH_LEN // 2).hexdigest()


def _tag(partition: str) -> str:
    """Hash tag of a partition: the partition itself when short and plain, else a hash."""
    return partition if _TAG_SAFE.fullmatch(partition) else _hash(partition)


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _split_uri(uri: str) -> tuple[str, bool | None]:
    """Strip this store's own ``cluster=`` query option from a Redis URI."""
    parts = urlsplit(uri)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("expected a Redis URI such as redis://host:6379/0 or rediss://...")
    query, cluster = [], None
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name.lower() != "cluster":
            query.append((name, value))
        elif value.lower() in _TRUE:
            cluster = True
        elif value.lower() in _FALSE:
            cluster = False
        else:
            raise ValueError(f"cluster={value!r}: expected true or false")
    return urlunsplit(parts._replace(query=urlencode(query))), cluster


class RedisResponseStore:
    """A :class:`~semcache.protocols.ResponseStore` in Redis 6.2+ or Redis Cluster.

    Keys, under :func:`key_prefix` (one prefix per embedder configuration):

    - ``P:e:ID``: the entry (header + payload bytes), with the entry's expiry;
    - ``P:x:{TAG}:H``: the exact-match index, partition + normalised query -> entry id;
    - ``P:m:{TAG}``: the partition's members (sorted by expiry), for ``flush(partition)``;
    - ``P:a:{TAG}:ID``: the entry's aliases (:meth:`add_alias`), for ``delete``; an
      alias is one more exact key naming the entry, and a member of the partition;
    - ``P:t:FIELD:{H}``: the partitions carrying one partition tag (:mod:`semcache.tags`),
      for ``partitions_where``: a small index, one member per partition, not per entry.

    ``TAG`` is the partition (hashed when long), so a partition's exact keys and its
    member list share a Redis Cluster slot and change together; entries spread over
    the cluster by id. Every key of an entry expires at the same instant.

    Redis Cluster is detected on first use (``INFO cluster``); ``?cluster=true`` or
    ``?cluster=false`` in the URI skips the check. ``socket_timeout`` and
    ``connect_timeout`` (seconds) are short, so a dead or stalled server fails fast.
    """

    def __init__(
        self,
        uri: str,
        *,
        model_id: str = "default",
        dimension: int = 0,
        prefix: str = "semcache",
        socket_timeout: float = 1.0,
        connect_timeout: float = 0.5,
        max_connections: int = 1000,
    ) -> None:
        self._uri, self._cluster_hint = _split_uri(uri)
        self.prefix = key_prefix(prefix, model_id, dimension)
        self._options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            # One immediate retry replaces a connection the server closed (restart,
            # failover); no backoff, since the caller's budget is a few hundred ms.
            "retry": Retry(NoBackoff(), 1),
            "health_check_interval": 0,
            "decode_responses": False,
        }
        self._max_connections = max_connections
        self._client: Redis | RedisCluster | None = None
        self._connect_lock = asyncio.Lock()
        self._scripts: dict[str, Any] = {}
        self._closed = False

    def __repr__(self) -> str:
        return f"RedisResponseStore(prefix={self.prefix!r}, cluster={self.is_cluster})"

    @property
    def is_cluster(self) -> bool | None:
        """True on Redis Cluster; None until the first call has connected."""
        if self._client is None:
            return None
        return isinstance(self._client, RedisCluster)

    # -- keys -------------------------------------------------------------------

    def _entry_key(self, entry_id: str) -> str:
        return f"{self.prefix}:e:{entry_id}"

    def _exact_key(self, partition: str, qhash: str) -> str:
        return f"{self.prefix}:x:{{{_tag(partition)}}}:{qhash}"

    def _alias_key(self, partition: str, entry_id: str) -> str:
        return f"{self.prefix}:a:{{{_tag(partition)}}}:{entry_id}"

    def _members_key(self, partition: str) -> str:
        return f"{self.prefix}:m:{{{_tag(partition)}}}"

    def _tag_key(self, tag: Tag) -> str:
        return f"{self.prefix}:t:{tag[0]}:{{{_hash(*tag)}}}"

    # -- protocol ---------------------------------------------------------------

    async def get(self, entry_id: str) -> Entry | None:
        client = await self._connect()
        return self._decode(await client.get(self._entry_key(entry_id)))

    async def get_many(self, entry_ids: Sequence[str]) -> list[Entry | None]:
        if not entry_ids:
            return []
        client = await self._connect()
        keys = [self._entry_key(i) for i in entry_ids]
        if isinstance(client, RedisCluster):
            blobs = await client.mget_nonatomic(keys)  # one call per slot, in parallel
        else:
            blobs = await client.mget(keys)
        return [self._decode(blob) for blob in blobs]

    async def set(self, entry: Entry, ttl: int | None) -> None:
        client = await self._connect()
        now_ms = int(time.time() * 1000)
        if entry.expires_at is not None:
            deadline: int | None = int(entry.expires_at * 1000)
        elif ttl:
            deadline = now_ms + ttl * 1000
        else:
            deadline = None
        blob = encode_entry(entry)
        # Payload (and the partition's tags) first: the exact key never names an entry
        # that was not written, nor one that partitions_where could not find.
        if deadline is None:
            write = client.set(self._entry_key(entry.entry_id), blob, get=True)
        else:
            write = client.set(self._entry_key(entry.entry_id), blob, pxat=deadline, get=True)
        tag_args = [entry.partition, "" if deadline is None else deadline, now_ms]
        tagged = [
            self._script("tag")(keys=[self._tag_key(tag)], args=tag_args)
            for tag in entry_tags(entry.metadata)
        ]
        old, *_ = await asyncio.gather(write, *tagged)
        await self._index(entry, deadline, now_ms)
        previous = self._decode(old, check_expiry=False)
        if previous is not None:
            # A replaced entry loses its aliases; an id reused for another question
            # loses its old exact key too.
            same = (previous.partition, previous.query) == (entry.partition, entry.query)
            await self._unindex(previous, own=not same)

    async def get_exact(self, partition: str, query: str) -> str | None:
        client = await self._connect()
        raw = await client.get(self._exact_key(partition, _hash(partition, query)))
        if not isinstance(raw, bytes):
            return None
        entry_id = raw.decode()
        # Same answer as a get(): never name an entry whose payload is gone.
        return entry_id if await client.exists(self._entry_key(entry_id)) else None

    async def get_exact_entry(self, partition: str, query: str) -> Entry | None:
        client = await self._connect()
        key = self._exact_key(partition, _hash(partition, query))
        if isinstance(client, RedisCluster):
            raw = await client.get(key)
            if not isinstance(raw, bytes):
                return None
            return await self.get(raw.decode())
        return self._decode(await self._script("exact")(keys=[key], args=[self._entry_key("")]))

    async def add_alias(self, partition: str, query: str, entry: Entry) -> bool:
        if partition != entry.partition:
            return False  # never an alias across partitions
        client = await self._connect()
        left = await client.pttl(self._entry_key(entry.entry_id))
        if left == -2:
            return False  # gone since it was read
        now_ms = int(time.time() * 1000)
        if entry.expires_at is not None:
            deadline: int | None = int(entry.expires_at * 1000)
        else:
            deadline = None if left < 0 else now_ms + left
        if deadline is not None and deadline <= now_ms:
            return False
        qhash = _hash(partition, query)
        added = await self._script("alias")(
            keys=[
                self._exact_key(partition, qhash),
                self._members_key(partition),
                self._alias_key(partition, entry.entry_id),
            ],
            args=[
                entry.entry_id,
                qhash + entry.entry_id,
                "" if deadline is None else deadline,
                now_ms,
                qhash,
                _MAX_ALIASES,
            ],
        )
        return bool(added)

    async def replace_metadata(self, entry: Entry, metadata: Mapping[str, Any]) -> bool:
        read = await self._read_as(entry)
        if read is None:
            return False  # gone, expired, or changed since it was read
        current, blob = read
        metadata = dict(metadata)
        new_tags = set(entry_tags(metadata)) - set(entry_tags(current.metadata))
        if new_tags:  # indexed first, as set() does: partitions_where finds the entry
            deadline = "" if current.expires_at is None else int(current.expires_at * 1000)
            now_ms = int(time.time() * 1000)
            for tag in sorted(new_tags):
                await self._script("tag")(
                    keys=[self._tag_key(tag)], args=[current.partition, deadline, now_ms]
                )
        # The script compares the stored bytes with those decoded above: a write that
        # landed in between (from any process) wins, and this one is refused.
        new = encode_entry(replace(current, metadata=metadata))
        key = self._entry_key(entry.entry_id)
        return bool(await self._script("swap")(keys=[key], args=[_sha1(blob), new]))

    async def delete_if_current(self, entry: Entry) -> bool:
        read = await self._read_as(entry)
        if read is None:
            return False  # gone, expired, or changed since it was read
        current, blob = read
        # As in replace_metadata: a write that landed since the read (a new answer, from
        # any process) makes the script refuse, and the entry is kept whole.
        key = self._entry_key(entry.entry_id)
        if not await self._script("drop")(keys=[key], args=[_sha1(blob)]):
            return False
        await self._unindex_deleted(current)
        return True

    async def delete(self, entry_id: str) -> bool:
        client = await self._connect()
        blob = await client.getdel(self._entry_key(entry_id))
        entry = self._decode(blob, check_expiry=False)
        if entry is None:
            return False
        await self._unindex_deleted(entry)
        return True

    async def flush(self, partition: str | None = None) -> int:
        client = await self._connect()
        if partition is None:
            return await self._flush_all(client)
        # One pass of ZSCAN: every member there throughout is met (some maybe twice), and
        # members added meanwhile may be met or not; so a busy partition never keeps the
        # flush going, and an entry stored while it runs is either flushed or kept whole.
        key = self._members_key(partition)
        deleted, cursor = 0, 0
        while True:
            cursor, found = await client.zscan(key, cursor, count=_BATCH)
            members = list(dict.fromkeys(_text(m) for m, _ in found))
            for start in range(0, len(members), _BATCH):
                deleted += await self._flush_batch(
                    client, partition, members[start : start + _BATCH]
                )
            if cursor == 0:
                return deleted

    async def _flush_batch(
        self, client: Redis | RedisCluster, partition: str, members: list[str]
    ) -> int:
        """Delete the entries of some members of a partition, then those members; return
        how many payloads this deleted. Cut off anywhere, each entry it did not delete is
        still a member (its payload maybe gone already): a flush sent again finishes it."""
        ids = [m[_QHASH_LEN:] for m in members]
        exact_keys = [self._exact_key(partition, m[:_QHASH_LEN]) for m in members]
        # Exact keys, alias sets and members share the partition's slot: one script each.
        await self._script("forget")(
            keys=[*exact_keys, *(self._alias_key(partition, i) for i in dict.fromkeys(ids))],
            args=ids,
        )
        deleted = int(await client.unlink(*(self._entry_key(i) for i in dict.fromkeys(ids))))
        await self._script("release")(
            keys=[self._members_key(partition), *exact_keys], args=[_QHASH_LEN, *members]
        )
        return deleted

    async def partitions_where(self, tags: Sequence[Tag]) -> list[str]:
        if not tags:
            return []
        client = await self._connect()
        now = time.time() * 1000
        found: set[str] | None = None
        for tag in dict.fromkeys(tags):
            members = await client.zrangebyscore(self._tag_key(tag), f"({now:.0f}", "+inf")
            names = {m.decode() for m in members if isinstance(m, bytes)}
            found = names if found is None else found & names
            if not found:
                return []
        return sorted(found or ())

    async def count(self) -> int:
        client = await self._connect()
        pattern = _glob_escape(self.prefix) + ":e:*"
        total = 0
        async for _ in client.scan_iter(match=pattern, count=1000):
            total += 1
        return total

    async def ping(self) -> None:
        client = await self._connect()
        await client.ping()

    async def aclose(self) -> None:
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await client.aclose()

    # -- internals --------------------------------------------------------------

    async def _connect(self) -> Redis | RedisCluster:
        client = self._client
        if client is not None:
            return client
        if self._closed:
            raise RuntimeError("store is closed")
        async with self._connect_lock:
            if self._client is None:
                self._client = await self._open()
                self._scripts = {
                    "index": self._client.register_script(_INDEX),
                    "unindex": self._client.register_script(_UNINDEX),
                    "forget": self._client.register_script(_FORGET),
                    "release": self._client.register_script(_RELEASE),
                    "tag": self._client.register_script(_TAG),
                    "alias": self._client.register_script(_ALIAS),
                    "exact": self._client.register_script(_EXACT),
                    "swap": self._client.register_script(_SWAP),
                    "drop": self._client.register_script(_DROP),
                }
            return self._client

    async def _open(self) -> Redis | RedisCluster:
        cluster = self._cluster_hint
        if cluster is None:
            probe = self._single_server()
            try:
                info = await probe.info("cluster")
                cluster = bool(info.get("cluster_enabled"))
                if not cluster:
                    return probe
            except BaseException:
                await _close_quietly(probe)
                raise
            await _close_quietly(probe)
        if not cluster:
            return self._single_server()
        client = RedisCluster.from_url(
            self._uri, max_connections=self._max_connections, **self._options
        )
        try:
            await client.initialize()
        except BaseException:
            await _close_quietly(client)
            raise
        return client

    def _single_server(self) -> Redis:
        # A peak of concurrent requests opens connections up to this bound; the
        # client's own default (100) would fail every call past it.
        return Redis.from_url(self._uri, max_connections=self._max_connections, **self._options)

    def _script(self, name: str) -> Any:
        return self._scripts[name]

    async def _read_as(self, entry: Entry) -> tuple[Entry, bytes] | None:
        """The stored entry and its bytes, while it is still ``entry`` (None otherwise)."""
        client = await self._connect()
        blob = await client.get(self._entry_key(entry.entry_id))
        current = self._decode(blob)
        if current is None or current != entry or not isinstance(blob, bytes):
            return None
        return current, blob

    async def _index(
        self, entry: Entry, deadline: int | None, now_ms: int, *, leave_others: bool = False
    ) -> None:
        """Write the entry's exact key and membership, until ``deadline`` (ms; None:
        none). With ``leave_others``, an exact key that names another entry is left."""
        qhash = _hash(entry.partition, entry.query)
        await self._script("index")(
            keys=[self._exact_key(entry.partition, qhash), self._members_key(entry.partition)],
            args=[
                entry.entry_id,
                qhash + entry.entry_id,
                "" if deadline is None else deadline,
                now_ms,
                "1" if leave_others else "",
            ],
        )

    async def _unindex_deleted(self, deleted: Entry) -> None:
        """Unindex an entry whose payload this call deleted, and index again the answer
        stored under its id meanwhile.

        The entry's keys live in its partition's slot, not its payload's: a store of a
        new answer for the same id (a refresh) can land between the payload's delete and
        this unindex, which then removes the new answer's exact key and membership too
        (they name the same id). A store writes its payload before its keys, so such an
        answer is in place when the payload is read after the unindex, and its keys are
        written back (leaving an exact key that names another entry by then); its aliases
        were the deleted answer's, and go, as a replaced entry's do. A new answer whose
        keys come later writes them anyway.

        The payload is read once more after each write: an answer deleted in between
        (its delete may have unindexed before this wrote) has its keys removed again,
        so none are left for a payload that is gone.
        """
        await self._unindex(deleted)
        client = await self._connect()
        key = self._entry_key(deleted.entry_id)
        written: Entry | None = None  # whose keys this call wrote back last
        for _ in range(_REINDEX_ROUNDS):
            now = self._decode(await client.get(key))
            if now is None:
                if written is None:
                    return  # gone, and no keys of ours left
                await self._unindex(written)  # deleted since it was read
                written = None
                continue  # and read again: a new answer may have landed meanwhile
            if now == written:
                return  # in place, with the keys written for it
            now_ms = int(time.time() * 1000)
            if now.expires_at is not None:
                deadline: int | None = int(now.expires_at * 1000)
            else:  # expiring by the store's ttl (or never): that of its payload
                left = await client.pttl(key)
                if left == -2:
                    continue  # gone since it was read
                deadline = None if left < 0 else now_ms + left
            await self._index(now, deadline, now_ms, leave_others=True)
            written = now
        log.debug("semcache: keys of %s not checked again after a delete", deleted.entry_id)

    async def _unindex(self, entry: Entry, *, own: bool = True) -> None:
        """Drop the entry's aliases, and (``own``) its exact key and membership."""
        client = await self._connect()
        part = entry.partition
        alias_set = self._alias_key(part, entry.entry_id)
        members = await client.smembers(alias_set)
        aliases = sorted(_text(a) for a in members)
        if not own and not aliases:
            return
        qhash = _hash(part, entry.query)
        await self._script("unindex")(
            keys=[
                self._exact_key(part, qhash),
                self._members_key(part),
                alias_set,
                *(self._exact_key(part, a) for a in aliases),
            ],
            args=[entry.entry_id, qhash + entry.entry_id if own else "", *aliases],
        )

    async def _flush_all(self, client: Redis | RedisCluster) -> int:
        pattern = _glob_escape(self.prefix) + ":*"
        marker = f"{self.prefix}:e:".encode()
        deleted = 0
        batch: list[bytes] = []
        async for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= _BATCH:
                deleted += await self._unlink_counting(client, batch, marker)
                batch = []
        if batch:
            deleted += await self._unlink_counting(client, batch, marker)
        return deleted

    @staticmethod
    async def _unlink_counting(
        client: Redis | RedisCluster, keys: list[bytes], marker: bytes
    ) -> int:
        entries = [k for k in keys if k.startswith(marker)]
        others = [k for k in keys if not k.startswith(marker)]
        if others:
            await client.unlink(*others)
        return int(await client.unlink(*entries)) if entries else 0

    @staticmethod
    def _decode(blob: object, *, check_expiry: bool = True) -> Entry | None:
        if not isinstance(blob, bytes):  # None: no such key (replies are bytes otherwise)
            return None
        entry = decode_entry(blob)
        if check_expiry and entry.expires_at is not None and entry.expires_at <= time.time():
            return None
        return entry


def _text(reply: object) -> str:
    """A member as read (bytes: the client does not decode replies)."""
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def _sha1(blob: bytes) -> str:
    """What the conditional scripts compare the stored bytes with (``redis.sha1hex``)."""
    return hashlib.sha1(blob, usedforsecurity=False).hexdigest()


async def _close_quietly(client: Redis | RedisCluster) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(1.0):
            await client.aclose()
