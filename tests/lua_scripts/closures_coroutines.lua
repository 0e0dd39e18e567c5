-- closures, upvalues, varargs, coroutines, goto, metatables
local function counter(start)
  local n = start
  return function(step) n = n + (step or 1); return n end, function() return n end
end
local inc, get = counter(10)
inc(); inc(5); inc()
print("counter", get())

local fns = {}
for i = 1, 5 do fns[i] = function() return i * i end end
local acc = {}
for i = 1, 5 do acc[#acc + 1] = fns[i]() end
print("loop closures", table.concat(acc, " "))

local function curry(f, n, ...)
  local args = { ... }
  if #args >= n then return f(table.unpack(args, 1, n)) end
  return function(...)
    local more = { table.unpack(args) }
    for _, v in ipairs({ ... }) do more[#more + 1] = v end
    return curry(f, n, table.unpack(more))
  end
end
print("curry", curry(function(a, b, c) return a * 100 + b * 10 + c end, 3)(1)(2)(3))
print("varargs", select("#", nil, nil, 3), select(-1, 1, 2, 3), (select(2, "a", "b", "c")))

local function gen(n)
  return coroutine.wrap(function()
    for i = 1, n do coroutine.yield(i, i * i) end
    return "done"
  end)
end
local g = gen(4)
for _ = 1, 5 do print("gen", g()) end

local co = coroutine.create(function(a, b)
  print("co start", a, b)
  local c = coroutine.yield(a + b)
  print("co got", c)
  local d, e = coroutine.yield(c * 2)
  print("co got", d, e)
  error("boom")
end)
print(coroutine.resume(co, 1, 2))
print(coroutine.status(co), coroutine.resume(co, 10))
print(coroutine.resume(co, "x", "y"))
print(coroutine.status(co), coroutine.resume(co))
local main_co, is_main = coroutine.running()
print(coroutine.isyieldable(), type(main_co), is_main)

-- producer/consumer
local function producer()
  return coroutine.create(function()
    for _, w in ipairs({ "alpha", "beta", "gamma" }) do coroutine.yield(w) end
  end)
end
local p = producer()
while true do
  local ok, v = coroutine.resume(p)
  if not v then break end
  io.write(v:upper(), ";")
end
print()

-- coroutine.close and to-be-closed variables
do
  local log = {}
  do
    local x <close> = setmetatable({}, { __close = function() log[#log + 1] = "closed" end })
    log[#log + 1] = "body"
  end
  print("tbc", table.concat(log, ","))
end

-- goto
local i = 1
::top::
if i <= 3 then io.write("g", i, " "); i = i + 1; goto top end
print()

-- metatables: vector class
local V = {}
V.__index = V
function V.new(x, y) return setmetatable({ x = x, y = y }, V) end
V.__add = function(a, b) return V.new(a.x + b.x, a.y + b.y) end
V.__eq = function(a, b) return a.x == b.x and a.y == b.y end
V.__tostring = function(v) return "(" .. v.x .. "," .. v.y .. ")" end
V.__len = function(v) return math.sqrt(v.x * v.x + v.y * v.y) end
V.__call = function(v, k) return v.x * k end
function V:scale(k) return V.new(self.x * k, self.y * k) end
local a, b = V.new(1, 2), V.new(3, 4)
print(tostring(a + b), a == V.new(1, 2), #b, b(10), tostring(a:scale(3)))
local ro = setmetatable({}, { __newindex = function(t, k, v) rawset(t, k, v * 2) end,
                              __index = function(t, k) return k .. "?" end })
ro.q = 21
print(ro.q, ro.missing, rawget(ro, "missing"))

-- integer/float and recursion
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
print("fib", fib(25), math.maxinteger + 1 == math.mininteger, 7 // 2, -7 // 2, 7 % -3, 2^10)
