-- Redis 7.0's Lua environment, built once per Lua state by `env.rs`.
--
-- Called with (I, mode): I is the internal table shared with Rust (its
-- primitives, the per-run state), mode is "eval" or "function". Stock Lua
-- 5.1 has no read-only tables (Redis patches its Lua for them), so a
-- protected table is shown to scripts as an empty proxy whose metatable
-- reads through to the real table and refuses writes; the builtins that
-- bypass metatables (rawset, rawget, next, pairs, ipairs, setmetatable,
-- getmetatable, getfenv, table.insert/remove/sort) see through proxies.
-- Nothing here is reachable from scripts except through those proxies.

local I, mode = ...

local G = getfenv(0)
local type, tostring, tonumber, error, select = type, tostring, tonumber, error, select
local orig_next, orig_rawget, orig_rawset = next, rawget, rawset
local orig_setmetatable, orig_getmetatable = setmetatable, getmetatable
local orig_getfenv, orig_setfenv = getfenv, setfenv
local orig_pcall, orig_xpcall = pcall, xpcall
local orig_loadstring, orig_load = loadstring, load
local sub, find, byte, gsub = string.sub, string.find, string.byte, string.gsub
local floor, ceil = math.floor, math.ceil
local concat = table.concat
local getinfo = debug.getinfo
local INTERNAL = "=jcache"
local RO = "Attempt to modify a readonly table"

-- luaPushErrorBuff: "-CODE msg" -> "CODE msg", "msg" -> "ERR msg".
local function err_table(s)
  local code, msg
  if sub(s, 1, 1) == "-" then
    local sp = find(s, " ", 1, true)
    if sp then
      code, msg = sub(s, 2, sp - 1), sub(s, sp + 1)
    else
      code, msg = "ERR", sub(s, 2)
    end
  else
    code, msg = "ERR", s
  end
  msg = gsub(gsub(msg, "^[\r\n]+", ""), "[\r\n]+$", "")
  return { err = code .. " " .. msg }
end
I.err_table = err_table

-- Read-only proxies ---------------------------------------------------------

local real_of = orig_setmetatable({}, { __mode = "k" }) -- proxy -> real table
local proxy_of = orig_setmetatable({}, { __mode = "k" }) -- real table -> proxy
local shown_mt = orig_setmetatable({}, { __mode = "k" }) -- proxy -> what getmetatable shows

local function ro_newindex()
  error(RO, 2)
end

local protect
protect = function(t, strict, index)
  local p = proxy_of[t]
  if p then
    return p
  end
  p = {}
  proxy_of[t] = p
  real_of[p] = t
  if index == nil then
    if strict then
      index = function(_, k)
        local v = orig_rawget(t, k)
        if v == nil then
          error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
        end
        return v
      end
    else
      index = t
    end
  end
  local mt = orig_getmetatable(t)
  if strict and mt == nil then
    -- Reads of present keys (a script's globals) then find them in the
    -- real table without calling a function; only a miss reaches `index`.
    -- Scripts never see this metatable: they hold only the proxy, and
    -- getmetatable shows them the one in `shown_mt`.
    orig_setmetatable(t, { __index = index })
    orig_setmetatable(p, { __index = t, __newindex = ro_newindex })
  else
    orig_setmetatable(p, { __index = index, __newindex = ro_newindex })
  end
  for k, v in orig_next, t do
    if type(v) == "table" then
      orig_rawset(t, k, protect(v, false))
    end
  end
  if type(mt) == "table" then
    shown_mt[p] = protect(mt, false)
  end
  if strict then
    -- Redis's error metatable ({__index=luaProtectedTableError, ...}), read-only.
    shown_mt[p] = protect({ __index = index, __newindex = ro_newindex }, false)
  end
  return p
end

local function unwrap(t)
  return real_of[t] or t
end

local function check_table(t, n, fname)
  if type(t) ~= "table" then
    local got = t == nil and select("#", t) == 0 and "no value" or type(t)
    error("bad argument #" .. n .. " to '" .. fname .. "' (table expected, got " .. got .. ")", 3)
  end
end

local function w_next(t, k)
  check_table(t, 1, "next")
  return orig_next(unwrap(t), k)
end
local function w_pairs(t)
  check_table(t, 1, "pairs")
  return w_next, t, nil
end
local function w_inext(t, i)
  i = i + 1
  local v = orig_rawget(unwrap(t), i)
  if v ~= nil then
    return i, v
  end
end
local function w_ipairs(t)
  check_table(t, 1, "ipairs")
  return w_inext, t, 0
end
local function w_rawget(t, k)
  check_table(t, 1, "rawget")
  return orig_rawget(unwrap(t), k)
end
local function w_rawset(t, k, v)
  check_table(t, 1, "rawset")
  if real_of[t] then
    error(RO, 0)
  end
  return orig_rawset(t, k, v)
end
local function w_getmetatable(x)
  if real_of[x] then
    return shown_mt[x]
  end
  return orig_getmetatable(x)
end
local function w_setmetatable(t, mt)
  if real_of[t] then
    error(RO, 0)
  end
  return orig_setmetatable(t, mt)
end
local function level(f)
  if type(f) == "number" and f > 0 then
    return f + 1
  end
  if f == nil then
    return 2
  end
  return f
end
local function w_getfenv(f)
  local e = orig_getfenv(level(f))
  return proxy_of[e] or e
end
local function w_setfenv(f, t)
  local r = orig_setfenv(level(f), t)
  if type(r) == "table" then
    return proxy_of[r] or r
  end
  return r
end
-- Redis's Lua parses every chunk as text: a binary chunk fails to load.
local function w_loadstring(s, name)
  if type(s) == "string" and byte(s, 1) == 27 then
    return nil, "binary chunks are not allowed"
  end
  return orig_loadstring(s, name)
end
local function w_load(f, name)
  if type(f) ~= "function" then
    return orig_load(f, name)
  end
  local parts = {}
  while true do
    local piece = f()
    if piece == nil or piece == "" then
      break
    end
    parts[#parts + 1] = piece
  end
  return w_loadstring(concat(parts), name or "=(load)")
end

-- redis.pcall semantics for a plain pcall (luaRedisPcall): an error table
-- with a string `err` is returned as that string. A killed script cannot be
-- caught: the error is raised again.
local function w_pcall(f, ...)
  local r = { orig_pcall(f, ...) }
  if not r[1] then
    if I.killed then
      error(r[2], 0)
    end
    local e = r[2]
    if type(e) == "table" and type(orig_rawget(e, "err")) == "string" then
      r[2] = e.err
    elseif type(e) == "table" and type(e.err) == "string" then
      r[2] = e.err
    end
  end
  return unpack(r, 1, table.maxn(r))
end
local function w_xpcall(f, h)
  local r = { orig_xpcall(f, h) }
  if not r[1] and I.killed then
    error(r[2], 0)
  end
  return unpack(r, 1, table.maxn(r))
end
local orig_resume = coroutine.resume
local function w_resume(co, ...)
  local r = { orig_resume(co, ...) }
  if not r[1] and I.killed then
    error(r[2], 0)
  end
  return unpack(r, 1, table.maxn(r))
end

local function ro_check(fname)
  local orig = table[fname]
  return function(t, ...)
    if real_of[t] then
      error(RO, 0)
    end
    return orig(t, ...)
  end
end
table.insert = ro_check("insert")
table.remove = ro_check("remove")
table.sort = ro_check("sort")
coroutine.resume = w_resume

-- math.random as Redis: Lua's algorithm over redisLrand48.
local function trunc(n)
  if n >= 0 then
    return floor(n)
  end
  return ceil(n)
end
local function checkint(n, fname, v)
  local x = tonumber(v)
  if x == nil then
    local got = type(v)
    error("bad argument #" .. n .. " to '" .. fname .. "' (number expected, got " .. got .. ")", 4)
  end
  return trunc(x)
end
math.random = function(...)
  if not I.running then
    error("math.random can only be called inside a script invocation", 3)
  end
  local r = (I.lrand48() % 2147483647) / 2147483647
  local n = select("#", ...)
  if n == 0 then
    return r
  elseif n == 1 then
    local u = checkint(1, "random", (...))
    if not (1 <= u) then
      error("bad argument #1 to 'random' (interval is empty)", 3)
    end
    return floor(r * u) + 1
  elseif n == 2 then
    local l = checkint(1, "random", (...))
    local u = checkint(2, "random", (select(2, ...)))
    if not (l <= u) then
      error("bad argument #2 to 'random' (interval is empty)", 3)
    end
    return floor(r * (u - l + 1)) + l
  end
  error("wrong number of arguments", 3)
end
math.randomseed = function(...)
  if not I.running then
    error("math.randomseed can only be called inside a script invocation", 3)
  end
  I.srand48(checkint(1, "randomseed", (...)))
end

math.random = I.trampoline(math.random)
math.randomseed = I.trampoline(math.randomseed)

-- The redis table -------------------------------------------------------------

local function raise(msg)
  error(err_table(msg))
end

local function add_log(t)
  t.log = function(...)
    local argc = select("#", ...)
    if argc < 2 then
      raise("redis.log() requires two arguments or more.")
    end
    local lvl = (...)
    if tonumber(lvl) == nil then
      raise("First argument must be a number (log level).")
    end
    lvl = trunc(tonumber(lvl))
    if lvl < 0 or lvl > 3 then
      raise("Invalid debug level.")
    end
    local parts = {}
    for j = 2, argc do
      local s = select(j, ...)
      local ts = type(s)
      if ts == "string" or ts == "number" then
        if j ~= 2 then
          parts[#parts + 1] = " "
        end
        parts[#parts + 1] = tostring(s)
      end
    end
    I.log(lvl, concat(parts))
  end
  t.LOG_DEBUG = 0
  t.LOG_VERBOSE = 1
  t.LOG_NOTICE = 2
  t.LOG_WARNING = 3
end

local function add_version(t)
  t.REDIS_VERSION_NUM = I.version_num
  t.REDIS_VERSION = I.version
end

-- redis.register_function (FUNCTION LOAD only), with Redis's error texts.
local FLAGS = {
  ["no-writes"] = true, ["allow-oom"] = true, ["allow-stale"] = true,
  ["no-cluster"] = true, ["allow-cross-slot-keys"] = true,
}
local lower = string.lower
local function is_str(v)
  return type(v) == "string" or type(v) == "number"
end
local function read_flags(t)
  local out = {}
  local j = 1
  while true do
    local f = t[j]
    if f == nil then
      return out
    end
    if not is_str(f) then
      return nil
    end
    f = lower(tostring(f))
    if not FLAGS[f] then
      return nil
    end
    out[#out + 1] = f
    j = j + 1
  end
end
local function register_function(...)
  local loading = I.loading
  if loading == nil then
    raise("redis.register_function can only be called on FUNCTION LOAD command")
  end
  local argc = select("#", ...)
  if argc < 1 or argc > 2 then
    raise("wrong number of arguments to redis.register_function")
  end
  local name, desc, cb, flags
  if argc == 1 then
    local t = (...)
    if type(t) ~= "table" then
      raise("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).")
    end
    for k, v in w_next, t do
      if not is_str(k) then
        raise("named argument key given to redis.register_function is not a string")
      end
      local key = lower(tostring(k))
      if key == "function_name" then
        if not is_str(v) then
          raise("function_name argument given to redis.register_function must be a string")
        end
        name = tostring(v)
      elseif key == "description" then
        if not is_str(v) then
          raise("description argument given to redis.register_function must be a string")
        end
        desc = tostring(v)
      elseif key == "callback" then
        if type(v) ~= "function" then
          raise("callback argument given to redis.register_function must be a function")
        end
        cb = v
      elseif key == "flags" then
        if type(v) ~= "table" then
          raise("flags argument to redis.register_function must be a table representing function flags")
        end
        flags = read_flags(v)
        if not flags then
          raise("unknown flag given")
        end
      else
        raise("unknown argument given to redis.register_function")
      end
    end
    if not name then
      raise("redis.register_function must get a function name argument")
    end
    if not cb then
      raise("redis.register_function must get a callback argument")
    end
  else
    local n, f = ...
    if not is_str(n) then
      raise("first argument to redis.register_function must be a string")
    end
    if type(f) ~= "function" then
      raise("second argument to redis.register_function must be a function")
    end
    name, cb = tostring(n), f
  end
  if name == "" or find(name, "[^%w_]") then
    raise("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long")
  end
  -- By lower-case name: Redis 7.0 keeps a library's functions
  -- case-sensitively but links them into its case-insensitive dict, so `f`
  -- and `F` in one library load, FCALL F runs `f`, and FUNCTION DELETE
  -- fails an assertion. Refusing them is the consistent reading.
  local key = lower(name)
  if loading.names[key] then
    raise("Function already exists in the library")
  end
  loading.names[key] = true
  loading[#loading + 1] = { name = name, desc = desc, flags = flags or {}, callback = cb }
end

local redis = {}
add_log(redis)
add_version(redis)
redis.setresp = function(...)
  if not I.running then
    raise("redis.setresp can only be called inside a script invocation")
  end
  if select("#", ...) ~= 1 then
    raise("redis.setresp() requires one argument.")
  end
  local resp = trunc(tonumber((...)) or 0)
  if resp ~= 2 and resp ~= 3 then
    raise("RESP version must be 2 or 3.")
  end
  I.resp = resp
end
redis.sha1hex = function(...)
  if select("#", ...) ~= 1 then
    raise("wrong number of arguments")
  end
  local s = (...)
  if type(s) ~= "string" and type(s) ~= "number" then
    s = ""
  end
  return I.sha1hex(tostring(s))
end
redis.error_reply = function(...)
  local s = (...)
  if select("#", ...) ~= 1 or type(s) ~= "string" then
    return err_table("wrong number or type of arguments")
  end
  if sub(s, 1, 1) ~= "-" then
    s = "-" .. s
  end
  return err_table(s)
end
redis.status_reply = function(...)
  local s = (...)
  if select("#", ...) ~= 1 or type(s) ~= "string" then
    return err_table("wrong number or type of arguments")
  end
  return { ok = s }
end
redis.set_repl = function(...)
  if not I.running then
    raise("redis.set_repl can only be called inside a script invocation")
  end
  if select("#", ...) ~= 1 then
    raise("redis.set_repl() requires two arguments.")
  end
  local flags = trunc(tonumber((...)) or 0)
  if flags < 0 or flags > 3 then
    raise("Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.")
  end
  I.host_set_repl(flags)
end
redis.REPL_NONE = 0
redis.REPL_AOF = 1
redis.REPL_SLAVE = 2
redis.REPL_REPLICA = 2
redis.REPL_ALL = 3
redis.acl_check_cmd = function(...)
  if not I.running then
    raise("redis.acl_check_cmd can only be called inside a script invocation")
  end
  local ok, e = I.host_acl(select("#", ...), { ... })
  if ok == nil then
    error(e)
  end
  return ok
end
local function trampolines(t)
  for k, v in orig_next, t do
    if type(v) == "function" then
      t[k] = I.trampoline(v)
    end
  end
end
if mode == "eval" then
  redis.breakpoint = function()
    return false
  end
  redis.debug = function() end
  redis.replicate_commands = function()
    return true
  end
end

trampolines(redis)
-- redis.call and redis.pcall are C functions made by Rust (vm.rs's
-- `redis_call`, Redis's luaRedisGenericCommand): they read their arguments
-- from the stack (as many as Redis's take), check `I.running`, read `I.resp`
-- and raise (call) or return (pcall) an error reply. Set after the
-- trampolines: being C functions already, they keep the script's frame.
redis.call = I.redis_call
redis.pcall = I.redis_pcall

-- The error handler (Redis's __redis__err__handler): error tables carry the
-- source and line of the script code that raised them.
local function handler(e)
  if I.killed then
    e = { err = I.killed }
  end
  local lvl = 2
  local i = getinfo(lvl, "nSl")
  while i and (i.what == "C" or i.what == "tail" or i.source == INTERNAL) do
    lvl = lvl + 1
    i = getinfo(lvl, "nSl")
  end
  if type(e) ~= "table" or real_of[e] then
    e = { err = "ERR " .. tostring(e) }
  end
  if i then
    e.source = i.source
    e.line = i.currentline
  end
  return e
end

-- Globals ------------------------------------------------------------------------

local allow = {
  "string", "cjson", "bit", "cmsgpack", "math", "table", "struct",
  "xpcall", "tostring", "getfenv", "setmetatable", "next", "assert", "tonumber",
  "rawequal", "collectgarbage", "getmetatable", "rawset", "pcall", "coroutine",
  "type", "select", "unpack", "gcinfo", "pairs", "rawget", "loadstring", "ipairs",
  "_VERSION", "setfenv", "load", "error", "newproxy",
}
local realG = {}
for _, name in ipairs(allow) do
  realG[name] = G[name]
end
realG.redis = redis
realG._G = realG
realG.next = w_next
realG.pairs = w_pairs
realG.ipairs = w_ipairs
realG.rawget = w_rawget
realG.rawset = w_rawset
realG.getmetatable = w_getmetatable
realG.setmetatable = w_setmetatable
realG.getfenv = w_getfenv
realG.setfenv = w_setfenv
realG.loadstring = w_loadstring
realG.load = w_load
realG.pcall = w_pcall
realG.xpcall = w_xpcall
if mode == "eval" then
  realG.__redis__err__handler = handler
end

local Gproxy = protect(realG, true)
-- `("x"):upper()` reads the string table through the string metatable.
local string_mt = orig_getmetatable("")
if string_mt then
  string_mt.__index = orig_rawget(realG, "string")
end

local env = Gproxy
if mode == "function" then
  -- FUNCTION libraries see an empty read-only globals table reading through
  -- to the real globals, or to the load-time API while FUNCTION LOAD runs.
  local libredis = {}
  libredis.register_function = register_function
  add_log(libredis)
  add_version(libredis)
  trampolines(libredis)
  local libapi_real = { redis = nil }
  local libapi = protect(libapi_real, true)
  orig_rawset(libapi_real, "redis", protect(libredis, true))
  local cur = realG
  local G0_real = {}
  local function g0_index(_, k)
    local v = orig_rawget(cur, k)
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
  end
  env = protect(G0_real, false, g0_index)
  shown_mt[env] = protect({ __index = Gproxy }, false)
  I.set_loading = function(on)
    if on then
      cur = libapi_real
    else
      cur = realG
    end
  end
  local _ = libapi
end

if I.set_loading == nil then
  I.set_loading = function() end
end
I.env = env
-- What vm.rs's `call_runner` runs every script and function with (as
-- Redis's luaCallFunction: KEYS and ARGV set in the real globals, the
-- handler as lua_pcall's error function).
I.handler = handler
I.realG = realG
I.load_run = function(f)
  I.killed = nil
  local loading = { names = {} }
  I.loading = loading
  I.set_loading(true)
  local ok, e = orig_pcall(f)
  I.set_loading(false)
  I.loading = nil
  -- A run starts with I.killed clear (vm.rs's call_runner clears it after
  -- a stopped run; this after a stopped load).
  local killed = I.killed
  I.killed = nil
  if ok then
    return nil, loading
  end
  if killed then
    e = { err = killed }
  end
  if type(e) == "table" then
    local m = e.err
    if m == nil then
      return "(null)"
    end
    return tostring(m)
  end
  return "ERR " .. tostring(e)
end
orig_setfenv(0, env)
