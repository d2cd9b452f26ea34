"""Lua scripts: each engine operation on Redis is exactly one of these, one round trip.

Tag versions are integers that only grow. A version key that does not exist is created at
the server's clock in microseconds, never at 0: if a version key expires or is evicted, it
comes back *above* every version an old entry may have recorded (each later bump adds 1,
and a tag is not bumped a million times a second), so old entries can never match again.
"""

from __future__ import annotations

from typing import Final

# Shared by the two read scripts: the current versions of the tag keys ``names``, as
# numbers (msgpack integers: no int() per tag in the client; exact below 2^53, which the
# microsecond clock passes in the 2250s). A missing version key, or one that does not hold
# a decimal integer (never written by us), is (re)created at the server clock in
# microseconds; INVALIDATE treats such a key the same way.
_VERSIONS = """
local function current_versions(names, tag_ttl)
  if #names == 0 then return {} end
  local versions = redis.call('MGET', unpack(names))
  local now = nil
  for i = 1, #versions do
    local version = versions[i] and string.match(versions[i], '^%d+$') and tonumber(versions[i])
    if not version then
      if not now then
        local t = redis.call('TIME')
        now = t[1] .. string.format('%06d', tonumber(t[2]))
      end
      redis.call('SET', names[i], now, 'PX', tag_ttl)
      version = tonumber(now)
    end
    versions[i] = version
  end
  return versions
end
"""

# KEYS: tag version keys of one slot. ARGV: tag TTL (ms).
# The cluster tier's creation of missing versions (it reads existing ones with GET): each
# version key comes from the clock of the node that holds it, like everywhere else.
VERSIONS: Final = _VERSIONS + "\nreturn current_versions(KEYS, ARGV[1])\n"

# KEYS: one key of the namespace (it routes the call to the namespace's slot).
# ARGV: entry key prefix, tag key prefix, tag TTL (ms), msgpack [[entry key suffixes],
# [tag names]].
# Returns one msgpack string {entries (blob | false), tag versions (numbers)}: one
# bulk reply parses far faster in redis-py than 2n+m separate ones. The names travel as
# one packed argument rather than 2n+m: redis-py packs each argument in Python, which
# cost more than the script itself (the keys all share the namespace's hash tag, so they
# are in the routed slot, as in READ_ENTRY). No PTTL per entry: a blob carries its own
# expiry time (see codec.py).
READ: Final = (
    _VERSIONS
    + """
local names = cmsgpack.unpack(ARGV[4])
local keys, tags = names[1], names[2]
local entries = {}
if #keys > 0 then
  for i = 1, #keys do keys[i] = ARGV[1] .. keys[i] end
  entries = redis.call('MGET', unpack(keys))
end
for i = 1, #tags do tags[i] = ARGV[2] .. tags[i] end
return cmsgpack.pack({entries, current_versions(tags, ARGV[3])})
"""
)

# KEYS: one entry key. ARGV: the tag key prefix, tag TTL (ms).
# For an entry whose tags the caller does not know (a composite): reads the blob, takes
# its tag names from the blob's stamps (see codec.py: after the 32-byte MAC, the format
# byte 3, a u32 count, then per tag a u32 length, the name and an i64 version) and returns
# msgpack {blob | false, versions of those tags in stamp order}, in one round trip. The
# tag keys are derived here rather than declared in KEYS; they share the entry's hash tag
# ``{ns}``, so they are in its slot. A blob of another format, or a malformed one, yields
# no versions, which the reader treats as a miss. The stamps are signed with the blob, so
# the reader also checks that these are the entry's own tags.
READ_ENTRY: Final = (
    _VERSIONS
    + """
local blob = redis.call('GET', KEYS[1])
local names = {}
if blob and #blob >= 37 and string.byte(blob, 33) == 3 then
  local count = struct.unpack('>I4', blob, 34)
  local pos = 38
  for i = 1, count do
    if pos + 3 > #blob then names = {} break end
    local size = struct.unpack('>I4', blob, pos)
    if pos + 3 + size + 8 > #blob then names = {} break end
    names[i] = ARGV[1] .. string.sub(blob, pos + 4, pos + 3 + size)
    pos = pos + 4 + size + 8
  end
end
return cmsgpack.pack({blob or false, current_versions(names, ARGV[2])})
"""
)

# KEYS: n entry keys, then m tag version keys.
# ARGV: n, m, the m versions the entries were computed against, then per entry:
#   TTL (ms), blob, c, then c 1-based indexes into the tag keys it depends on.
# An entry is written only if all its tags still have the versions it recorded: a loader
# that read the source before a concurrent invalidation cannot store its old value.
FILL: Final = """
local n, m = tonumber(ARGV[1]), tonumber(ARGV[2])
local current = {}
if m > 0 then
  local got = redis.call('MGET', unpack(KEYS, n + 1, n + m))
  for i = 1, m do current[i] = (got[i] == ARGV[2 + i]) end
end
local a, written = 3 + m, 0
for i = 1, n do
  local c = tonumber(ARGV[a + 2])
  local ok = true
  for j = 1, c do
    if not current[tonumber(ARGV[a + 2 + j])] then ok = false end
  end
  if ok then
    redis.call('SET', KEYS[i], ARGV[a + 1], 'PX', ARGV[a])
    written = written + 1
  end
  a = a + 3 + c
end
return written
"""

# Bumps KEYS (tag version keys) with TTL ARGV[1] and sets ``versions`` to their new
# versions; shared by INVALIDATE and BUMP.
_BUMP = """
local t = redis.call('TIME')
local now = t[1] .. string.format('%06d', tonumber(t[2]))
local versions = {}
for i = 1, #KEYS do
  local current = redis.call('GET', KEYS[i])
  if current and string.match(current, '^%d+$') then
    versions[i] = redis.call('INCR', KEYS[i])
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  else
    redis.call('SET', KEYS[i], now, 'PX', ARGV[1])
    versions[i] = tonumber(now)
  end
end
"""

# KEYS: tag version keys. ARGV: tag TTL (ms), broadcast channel, the tag names.
# Bumps every tag, then publishes {tags, new versions} so other instances drop their L1
# copies; returns the new versions.
INVALIDATE: Final = (
    _BUMP
    + """
local tags = {}
for i = 1, #KEYS do tags[i] = ARGV[2 + i] end
redis.call('PUBLISH', ARGV[2], cmsgpack.pack({tags, versions}))
return versions
"""
)

# KEYS: tag version keys of one slot. ARGV: tag TTL (ms).
# The cluster tier's bump: it publishes once for all the slots an invalidation touched,
# after every node has answered, instead of once per slot.
BUMP: Final = _BUMP + "\nreturn versions\n"
