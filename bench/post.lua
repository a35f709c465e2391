-- wrk script: POST the chat completion in the file $BENCH_BODY.
--
--   BENCH_HEADERS  a file of "Name: value" lines to send as well
--   BENCH_SCALE    N: cycle through N keys and N models, request i with
--                  key sk-scale-<i> and model scale-<i> (the scaling runs)

local function read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("*a")
    f:close()
    return s
end

wrk.method = "POST"
wrk.body = read(os.getenv("BENCH_BODY"))
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench-client"

local extra = os.getenv("BENCH_HEADERS")
if extra and extra ~= "" then
    for line in read(extra):gmatch("[^\n]+") do
        local name, value = line:match("^([^:]+):%s*(.*)$")
        if name then
            wrk.headers[name] = value
        end
    end
end

local n = tonumber(os.getenv("BENCH_SCALE") or "")

if n then
    local requests = {}
    local i = 0

    -- built once, so that wrk's own cost does not grow with N; in init,
    -- when wrk has set the Host header and the path
    init = function(args)
        for k = 1, n do
            local id = string.format("%05d", k)
            local headers = {}
            for name, value in pairs(wrk.headers) do
                headers[name] = value
            end
            headers["Authorization"] = "Bearer sk-scale-" .. id
            local body = wrk.body:gsub('"model":"[^"]*"',
                                       '"model":"scale-' .. id .. '"', 1)
            requests[k] = wrk.format("POST", nil, headers, body)
        end
    end

    request = function()
        i = i % n + 1
        return requests[i]
    end
end
