-- wrk script for scripts/load/totp-step-ups.sh: sends each line of the requests file once, as
-- POST /sdk/{environment}/users/mfa/auth/totp with the line's session and code, asking for a wallet:export token.
-- Thread n of N takes lines n, n+N, n+2N... in order. Arguments (after `--`): requests file, thread count,
-- environment id.

local next_id = 1

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

function init(args)
  local path, threads, environment = args[1], tonumber(args[2]), args[3]
  path_url = "/sdk/" .. environment .. "/users/mfa/auth/totp"
  lines = {}
  local i = 0
  for line in io.lines(path) do
    if i % threads == thread_id - 1 then
      lines[#lines + 1] = line
    end
    i = i + 1
  end
  cursor = 1
end

function request()
  -- Past the end (a run longer than the file), the last pair again: refused, and counted as non-2xx.
  local line = lines[math.min(cursor, #lines)]
  cursor = cursor + 1
  local jwt, code = line:match("^(%S+) (%S+)$")
  return wrk.format("POST", path_url, {
    ["Authorization"] = "Bearer " .. jwt,
    ["Content-Type"] = "application/json",
  }, '{"code":"' .. code .. '","requestedScopes":["wallet:export"]}')
end
