-- GET a random customer by id. Data file: one id per line; path: route prefix.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

local ids, prefix, headers

function init(args)
  local file
  file, prefix, _, headers = parse_args(args)
  ids = read_lines(file)
end

function request()
  return wrk.format("GET", prefix .. ids[math.random(#ids)], headers)
end
