-- an uncaught error: lua prints a traceback on stderr and exits with status 1
local function inner(x) if x > 2 then error("uncaught failure at " .. x) end return inner(x + 1) end
print("start")
inner(0)
print("never")
