-- stdout buffering, stderr, and os.exit with a status
io.write("before exit\n")
io.stderr:write("to stderr\n")
local t = setmetatable({}, { __gc = function() print("finalizer runs on close") end })
os.exit(7, true)
