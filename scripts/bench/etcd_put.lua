-- wrk script: etcd v3 JSON gateway put, same value size and key space as raftd_put.lua.
local value_bytes = tonumber(os.getenv("VALUE_BYTES") or "100")
local keys = tonumber(os.getenv("KEYS") or "10000")
local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(data)
  return ((data:gsub(".", function(x)
    local r, b = "", x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(x)
    if #x < 6 then return "" end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == "1" and 2 ^ (6 - i) or 0) end
    return b64chars:sub(c + 1, c + 1)
  end) .. ({"", "==", "="})[#data % 3 + 1])
end
local value = b64(string.rep("x", value_bytes))
local bodies = {}
for i = 0, keys - 1 do
  bodies[i] = '{"key":"' .. b64("bench-" .. i) .. '","value":"' .. value .. '"}'
end
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", "/v3/kv/put", {["Content-Type"] = "application/json"}, bodies[counter % keys])
end
