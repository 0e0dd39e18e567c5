-- io.read / io.lines from stdin: word frequencies
local counts, total, lines = {}, 0, 0
for line in io.lines() do
  lines = lines + 1
  for w in line:lower():gmatch("%a+") do counts[w] = (counts[w] or 0) + 1; total = total + 1 end
end
local ws = {}
for w, c in pairs(counts) do ws[#ws + 1] = { w, c } end
table.sort(ws, function(a, b) return a[2] > b[2] or (a[2] == b[2] and a[1] < b[1]) end)
print("lines", lines, "words", total, "distinct", #ws)
for k = 1, math.min(5, #ws) do print(ws[k][1], ws[k][2]) end
print(io.read("l"), io.read("n"))
