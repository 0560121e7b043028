-- Search with a random term. Data file: one URL-encoded term per line; path: up to "q=".
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

local terms, prefix, headers

function init(args)
  local file
  file, prefix, _, headers = parse_args(args)
  terms = read_lines(file)
end

function request()
  return wrk.format("GET", prefix .. terms[math.random(#terms)], headers)
end
