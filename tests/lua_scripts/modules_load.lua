-- require-free module pattern, load, string.dump, environments, io.write
local function define_stack_module()
  local M = {}
  local mt = { __index = M }
  local created = 0
  function M.new() created = created + 1; return setmetatable({ n = 0 }, mt) end
  function M:push(v) self.n = self.n + 1; self[self.n] = v; return self end
  function M:pop() local v = self[self.n]; self[self.n] = nil; self.n = self.n - 1; return v end
  function M.count() return created end
  return M
end
local Stack = define_stack_module()
local s = Stack.new():push(1):push(2):push(3)
Stack.new()
io.write("stack ", s:pop(), " ", s:pop(), " ", s.n, " created=", Stack.count(), "\n")

-- package.preload: require without files
package.preload["util"] = function(name)
  return { name = name, double = function(x) return 2 * x end }
end
local util = require("util")
print(util.name, util.double(21), require("util") == util, package.loaded.util == util)

-- load of a text chunk, with arguments and a custom environment
local f = assert(load("local a, b = ...; return a * b, x"))
print(f(6, 7))
local env = { x = "from env", tostring = tostring }
local g = assert(load("y = 5; return x .. ' ' .. tostring(y)", "chunk", "t", env))
print(g(), env.y, rawget(_G, "y"))
print(load("return +"))
print(load("syntax error here", "=mychunk"))
-- load with a reader function
local pieces = { "return ", "1 ", "+ ", "41" }
local i = 0
print(load(function() i = i + 1; return pieces[i] end)())
-- binary chunks
local function adder(n) return function(x) return x + n end end
local dumped = string.dump(function(a, b) local t = {} for k = a, b do t[#t + 1] = k * k end return table.concat(t, ",") end)
print(type(dumped), load(dumped, "bin", "b")(1, 6))
print(load(dumped, "bin", "t"))
print(adder(5)(10))
-- _ENV tricks
do
  local _ENV = { print = print }
  z = 99
  print("sandboxed", z)
end
print("global z", z)
-- select, string buffers, io.write with numbers
io.write(1, " ", 2.5, " ", -0.0, " ", 1e300 * 1e10, "\n")
local buf = {}
for k = 1, 10 do buf[#buf + 1] = string.format("%02d", k) end
io.write(table.concat(buf, "-"), "\n")
print(io.write("chained "):write("writes\n") == io.stdout)
print(io.type(io.stdout), io.type(42))
-- os / misc deterministic bits
print(type(os.time()), type(os.clock()), os.getenv("DEVLINK_SURELY_UNSET_VAR"))
print(os.date("!%Y-%m-%d %H:%M:%S", 86400 * 365), os.time({ year = 2000, month = 1, day = 1, hour = 12 }) ~= nil)
print(_VERSION, math.type(#arg), arg[0] ~= nil)
