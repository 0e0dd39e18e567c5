-- string.format of floats, number conversions, math library
local vals = { 0, 1, -1, 0.1, 1/3, -2/3, 3.14159265358979, 1e100, 1e-100, 123456789.125,
               2^53, 2^63, -0.0, 1e308 * 10, 6.02214076e23 }
for _, v in ipairs(vals) do
  print(string.format("%g|%.3f|%.10e|%a|%5.1f|%.17g|%s", v, v, v, v, v, v, tostring(v)))
end
print(string.format("%d %i %5.2s %%", 42, -7, "abc"))
print(math.pi, -math.pi, math.huge, -math.huge, math.maxinteger, math.mininteger)
print(0/0 ~= 0/0, math.type(1), math.type(1.0), math.type("1"), math.tointeger(3.0), math.tointeger(3.5))
print(1e15, 1e16, 2^24, 10 / 2, 3 // 1.0, 7 % 2.5, -7 % 2.5, 1 // 0.0, -1 // 0.0)
print(math.floor(-3.5), math.ceil(-3.5), math.abs(-4), math.max(3, 9, -1), math.min(2.5, 1))
print(math.fmod(7, 3), math.fmod(-7, 3), math.sqrt(2), math.exp(1), math.log(100, 10), math.log(8, 2))
print(math.sin(1), math.cos(1), math.tan(1), math.atan(1, 2), math.ult(1, -1))
print(tonumber("0x10"), tonumber("  12  "), tonumber("1e2"), tonumber("10", 2), tonumber("zz", 36),
      tonumber("8", 8), tonumber(""), tonumber("0x1p4"), tonumber("1e"))
print(string.format("%.14g", 0.1 + 0.2), 0.1 + 0.2 == 0.3, 100000000000000, 2^31 | 0)
print(5 & 3, 5 | 3, 5 ~ 3, ~5, 1 << 62, 1 << 64, -1 >> 1, 3.0 | 0)
print(string.format("%10.4f|%-10.2e|%+d|% d", math.pi, 12345.678, 5, 5))
print(8 // 3, 8.0 // 3, -8 // 3, 8 % -3, 2^-1, 100 // 1e0)
local sum = 0.0
for i = 1, 1000 do sum = sum + 1 / i end
print(string.format("harmonic %.12f", sum))
local ok, err = pcall(function() return 1 // 0 end)
print(ok, err)
print(math.floor(2^31 + 0.5), string.format("%.0f", 2.5), string.format("%.0f", 3.5))
