-- Upsert by PSID, a third each: a new customer, an existing one with a new name, an
-- existing one sent unchanged (the common webhook case).
-- Data file: TSV subset, app_id, psid, platform, first_name, last_name ("change" rows may
-- be renamed, "same" rows never are). New PSIDs are 9<nonce><thread><counter>: numeric
-- and unique per run.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

local change, same, path, nonce, headers
local counter = 0

function init(args)
  local file
  file, path, nonce, headers = parse_args(args)
  change, same = {}, {}
  for _, line in ipairs(read_lines(file)) do
    local f = split_tabs(line)
    local row = { app_id = f[2], psid = f[3], platform = f[4], first = f[5], last = f[6] }
    if f[1] == "change" then change[#change + 1] = row else same[#same + 1] = row end
  end
end

local function body(app_id, psid, platform, first, last)
  return '{"app_id": ' .. json_string(app_id) .. ', "psid": ' .. json_string(psid) ..
    ', "platform": ' .. json_string(platform) .. ', "first_name": ' .. json_string(first) ..
    ', "last_name": ' .. json_string(last) .. '}'
end

function request()
  local pick = math.random(3)
  local row = (pick == 3) and same[math.random(#same)] or change[math.random(#change)]
  local data
  if pick == 1 then
    counter = counter + 1
    local psid = string.format("9%s%d%09d", nonce, tid or 0, counter)
    local other = change[math.random(#change)]
    data = body(row.app_id, psid, row.platform, other.first, row.last)
  elseif pick == 2 then
    local other = change[math.random(#change)]
    data = body(row.app_id, row.psid, row.platform, other.first, other.last)
  else
    data = body(row.app_id, row.psid, row.platform, row.first, row.last)
  end
  return wrk.format("POST", path, headers, data)
end
