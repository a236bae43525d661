-- Entry point: runs `dir/script` and prints the error text miltertest would swallow.
local ok, err = pcall(dofile, dir .. "/" .. script)
if not ok then
  io.stderr:write("FAIL in " .. script .. ": " .. tostring(err) .. "\n")
  error(err)
end
