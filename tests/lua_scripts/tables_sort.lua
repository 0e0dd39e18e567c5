-- tables, sorting with comparators, table library
local people = {
  { name = "Ana", age = 31 }, { name = "Bob", age = 25 }, { name = "Cid", age = 31 },
  { name = "Dee", age = 19 }, { name = "Eve", age = 25 }, { name = "Fay", age = 44 },
}
table.sort(people, function(a, b)
  if a.age ~= b.age then return a.age > b.age end
  return a.name < b.name
end)
for _, p in ipairs(people) do io.write(p.name, "=", p.age, " ") end
print()

-- deterministic pseudo-random numbers (LCG) and a big sort
local seed = 12345
local function rnd(m) seed = (seed * 1103515245 + 12345) % 2147483648; return seed % m end
local t = {}
for i = 1, 2000 do t[i] = rnd(100000) end
table.sort(t)
local ok = true
for i = 2, #t do if t[i - 1] > t[i] then ok = false end end
print("sorted", ok, t[1], t[1000], t[2000])
table.sort(t, function(a, b) return a > b end)
print("desc", t[1], t[2000])

local words = {}
for w in ("pear Apple fig banana cherry apple Date"):gmatch("%a+") do words[#words + 1] = w end
table.sort(words, function(a, b) return a:lower() < b:lower() or (a:lower() == b:lower() and a < b) end)
print(table.concat(words, " "))

-- table library
local l = { 1, 2, 3 }
table.insert(l, 4); table.insert(l, 1, 0); print(table.concat(l, ","), #l)
print(table.remove(l), table.remove(l, 1), table.concat(l, ","))
print(table.unpack({ 1, 2, 3, nil, 5 }, 1, 5))
local m = table.move({ 1, 2, 3, 4, 5 }, 2, 4, 1, {})
print(table.concat(m, ","), select("#", table.unpack(m)))
local packed = table.pack(1, nil, 3)
print(packed.n, packed[1], packed[2], packed[3])

-- hash keys: print in sorted order (pairs order depends on a random hash seed)
local inv = {}
for i, w in ipairs(words) do inv[w] = i end
local keys = {}
for k in pairs(inv) do keys[#keys + 1] = k end
table.sort(keys)
for _, k in ipairs(keys) do io.write(k, ":", inv[k], " ") end
print()

-- mixed keys, nested tables, length, next
local mixed = { 10, 20, 30, x = 1, [1.0] = "one", [2^53] = "big", [true] = "yes" }
print(mixed[1], mixed.x, mixed[2^53], mixed[true], #mixed, next({}))
local grid = {}
for r = 1, 4 do grid[r] = {} for c = 1, 4 do grid[r][c] = r * c end end
local sum = 0
for r = 1, 4 do for c = 1, 4 do sum = sum + grid[r][c] end end
print("grid", sum, #grid, #grid[4])

-- memoisation with weak tables and GC finalizers
local memo = setmetatable({}, { __mode = "k" })
local order = {}
do
  for i = 1, 3 do
    local obj = setmetatable({ id = i }, { __gc = function(o) order[#order + 1] = o.id end })
    memo[obj] = i
  end
end
collectgarbage(); collectgarbage()
table.sort(order)
local left = 0
for _ in pairs(memo) do left = left + 1 end
print("gc", table.concat(order, ","), left)

-- a queue and a set
local Q = { first = 1, last = 0, items = {} }
local function push(q, v) q.last = q.last + 1; q.items[q.last] = v end
local function pop(q) local v = q.items[q.first]; q.items[q.first] = nil; q.first = q.first + 1; return v end
for i = 1, 5 do push(Q, i * 3) end
print("queue", pop(Q), pop(Q), Q.last - Q.first + 1)
