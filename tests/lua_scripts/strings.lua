-- string operations and patterns
local s = "The quick brown fox jumps over the lazy dog"
print(#s, s:upper(), s:lower())
print(s:sub(5, 9), s:sub(-3), s:sub(-8, -5), s:rep(2, "|"))
print(s:reverse(), s:byte(1), s:byte(-1), string.char(72, 105, 33))
print(s:find("fox"), s:find("o", 20, true), s:find("%s(%a+)%s", 10))
print(s:match("(%a+) (%a+)$"), s:match("()q()"))
for w in s:gmatch("%a+") do io.write(w:len(), " ") end
print()
print((s:gsub("o", "0")), select(2, s:gsub("%a+", "")))
print(s:gsub("(%w+) (%w+)", "%2 %1"))
print(("hello world"):gsub("%w+", { hello = "HI", world = false }))
print(("abc"):gsub("", "-"))
print(("x = 1, y = 22, z = 333"):gsub("(%w+) = (%d+)", function(k, v) return v .. "=" .. k end))
print(string.format("[%q]", 'a "quoted"\n\0 string'))
print(("%bxy"):len(), ("f(a(b)c)d"):match("%b()"), ("  trim me  "):match("^%s*(.-)%s*$"))
print(("key=val; k2=v2"):match("(%w+)=(%w+);%s*(%w+)=(%w+)"))
print(("2024-01-15"):match("^(%d%d%d%d)-(%d%d)-(%d%d)$"))
print(("THE (quick) fox"):find("%((%a+)%)"))
print(("hello"):rep(0), ("ab"):rep(3, ","), ("%d"):format(42))
print(utf8.char(72, 228, 8364, 128512), utf8.len("häll€"), #utf8.char(128512))
for p, c in utf8.codes("aé€") do io.write(p, ":", c, " ") end
print()
print(tostring(12):len(), ("10") + 5, "3" * "4", 10 .. 20)
print(string.pack and #string.pack("i4i8", 1, 2), string.unpack("<i2", "\1\2"))
print(table.concat({ "a", "b", "c" }, ", "), ("x"):byte(1, -1))
local parts = {}
for field in ("a,b,,d,"):gmatch("([^,]*)") do parts[#parts + 1] = "<" .. field .. ">" end
print(table.concat(parts))
print(("CamelCaseString"):gsub("(%u)", function(c) return "_" .. c:lower() end))
print(string.format("%-10s|%10s|%.3s", "left", "right", "truncate"))
print(("%5d|%-5d|%05d|%x|%X|%o|%c"):format(42, 42, 42, 255, 255, 8, 65))
