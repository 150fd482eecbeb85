-- wrk script: PUT /v1/kv/bench-<n> {"value":"<VALUE_BYTES bytes>"} over a key space of KEYS keys.
-- TOKEN set: sent as Authorization: Bearer TOKEN (raftd --auth-tokens).
local value_bytes = tonumber(os.getenv("VALUE_BYTES") or "100")
local keys = tonumber(os.getenv("KEYS") or "10000")
local body = '{"value":"' .. string.rep("x", value_bytes) .. '"}'
local headers = {["Content-Type"] = "application/json"}
local token = os.getenv("TOKEN")
if token and token ~= "" then headers["Authorization"] = "Bearer " .. token end
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("PUT", "/v1/kv/bench-" .. (counter % keys), headers, body)
end
