-- wrk script for benchmarks/ingest.py: each request sends the next pre-signed, unique Stripe
-- event from the file named by INGEST_BODIES (one "signature<TAB>body" per line).
local deliveries = {}
local next_one = 1

function init(args)
  for line in io.lines(os.getenv("INGEST_BODIES")) do
    local tab = line:find("\t", 1, true)
    deliveries[#deliveries + 1] = { line:sub(1, tab - 1), line:sub(tab + 1) }
  end
  next_one = 1
end

function request()
  local d = deliveries[next_one]
  next_one = next_one % #deliveries + 1
  return wrk.format("POST", nil, { ["Stripe-Signature"] = d[1], ["Content-Type"] = "application/json" }, d[2])
end
