-- mtlib.lua -- shared helpers for postlink's miltertest(8) scripts
-- (tests/milter/*.lua), loaded with dofile(lib).  miltertest plays
-- Postfix's side of the milter protocol against a running milter; these
-- helpers send one whole SMTP transaction the way Postfix does (connect
-- with the client address, MAIL-stage macros i and {auth_authen}, MAIL,
-- RCPT, header fields, end of headers, body, end of message), skipping
-- the stages the milter switched off in negotiation, and print one TAP
-- line per assertion: "ok - ..." / "not ok - ...".  The calling shell
-- test (tests/integration/t_milter_*.sh) numbers them and requires the
-- final "done" line, so a script that dies half-way fails.
local M = {}

M.failed = 0

function M.ok(cond, desc)
    if cond then
        print("ok - " .. desc)
    else
        print("not ok - " .. desc)
        M.failed = M.failed + 1
    end
    return cond
end

function M.diag(s)
    for line in tostring(s):gmatch("[^\n]+") do print("# " .. line) end
end

function M.done()
    print("done")
end

-- Run a script's body: an error (miltertest reports those raised inside
-- its mt.* functions only sometimes) becomes a diagnostic and a failure.
function M.main(body)
    local ok, err = xpcall(body, debug.traceback)
    if not ok then
        M.diag("script error: " .. tostring(err))
        M.ok(false, "the script runs without errors")
    end
end

-- A short unique word for Message-IDs in this run.
local seq = 0
function M.unique(prefix)
    seq = seq + 1
    return string.format("%s.%d.%d", prefix, os.time(), seq)
end

function M.rfc5322_date(t)
    return os.date("!%a, %d %b %Y %H:%M:%S +0000", t or os.time())
end

local names = {}
for _, n in ipairs({"SMFIR_CONTINUE", "SMFIR_ACCEPT", "SMFIR_REJECT", "SMFIR_TEMPFAIL",
                    "SMFIR_DISCARD", "SMFIR_REPLYCODE"}) do
    if _G[n] then names[_G[n]] = n end
end
function M.reply_name(r)
    return names[r] or string.format("reply %s", tostring(r))
end

local function must(err, what)
    if err ~= nil then error(what .. ": " .. tostring(err), 2) end
end

-- M.send(sock, msg): one transaction on a new connection to the milter at
-- sock ("unix:/path").  msg fields (all optional but from/rcpt):
--   ip, host   client address and name (default 127.0.0.1, client.test)
--   auth       SASL login, sent as macro {auth_authen}
--   qid        queue id, macro i (default: made up)
--   from       envelope sender, "<addr>"
--   rcpt       list of envelope recipients, "<addr>"
--   headers    list of {name, value} in message order
--   body       body text (CRLF line ends)
-- Returns conn, stage, reply: stage is "eom" when the message went
-- through to its end, else the stage the milter refused at ("mail",
-- "rcpt" with the recipient's index in msg.rcpt, "header").  The
-- connection stays open so mt.eom_check/mt.getheader can look at the end
-- of message actions; close it with mt.disconnect.
function M.send(sock, msg)
    -- the socket file exists a moment before the milter listens on it:
    -- retry a refused connection (every 0.05 s, for up to 10 s)
    local conn = mt.connect(sock, 200, 0.05)
    if conn == nil then error("cannot connect to " .. sock) end
    must(mt.negotiate(conn, nil, nil, nil), "negotiate")
    if not mt.test_option(conn, SMFIP_NOCONNECT) then
        must(mt.conninfo(conn, msg.host or "client.test", msg.ip or "127.0.0.1"), "conninfo")
        if mt.getreply(conn) ~= SMFIR_CONTINUE then return conn, "connect", mt.getreply(conn) end
    end
    if not mt.test_option(conn, SMFIP_NOHELO) then
        must(mt.helo(conn, msg.host or "client.test"), "helo")
    end
    -- after CONNECT and HELO: a later stage would discard these macros
    if msg.auth then
        must(mt.macro(conn, SMFIC_MAIL, "i", msg.qid or M.unique("QID"), "{auth_authen}", msg.auth),
             "macro")
    else
        must(mt.macro(conn, SMFIC_MAIL, "i", msg.qid or M.unique("QID")), "macro")
    end
    must(mt.mailfrom(conn, msg.from), "mailfrom")
    if mt.getreply(conn) ~= SMFIR_CONTINUE then return conn, "mail", mt.getreply(conn) end
    for i, r in ipairs(msg.rcpt) do
        must(mt.rcptto(conn, r), "rcptto")
        if mt.getreply(conn) ~= SMFIR_CONTINUE then return conn, "rcpt", mt.getreply(conn), i end
    end
    for _, h in ipairs(msg.headers or {}) do
        -- miltertest 1.6 overflows its 1024-byte buffer on longer fields
        if #h[1] + #h[2] + 2 > 1024 then error("header field " .. h[1] .. " too long for miltertest", 2) end
        must(mt.header(conn, h[1], h[2]), "header " .. h[1])
        if mt.getreply(conn) ~= SMFIR_CONTINUE then return conn, "header", mt.getreply(conn) end
    end
    if not mt.test_option(conn, SMFIP_NOEOH) then must(mt.eoh(conn), "eoh") end
    if not mt.test_option(conn, SMFIP_NOBODY) then
        must(mt.bodystring(conn, msg.body or "Hello.\r\n"), "body")
    end
    must(mt.eom(conn), "eom")
    return conn, "eom", mt.getreply(conn)
end

-- Assert that the message went through to its end with the wanted reply.
function M.reply_is(stage, reply, want, desc)
    local good = stage == "eom" and reply == want
    if not M.ok(good, desc) then
        M.diag(string.format("got %s at %s, wanted %s at eom", M.reply_name(reply), stage,
                             M.reply_name(want)))
    end
    return good
end

-- M.has(conn, desc, op, ...) / M.hasnt(...): mt.eom_check is / is not true.
function M.has(conn, desc, op, ...)
    return M.ok(mt.eom_check(conn, op, ...), desc)
end
function M.hasnt(conn, desc, op, ...)
    return M.ok(not mt.eom_check(conn, op, ...), desc)
end

-- The i-th (1-based) header field named name that the milter added, or nil.
function M.added(conn, name, i)
    return mt.getheader(conn, name, (i or 1) - 1)
end

-- A table of the store (Berkeley DB): key -> value, read with db_dump
-- (global db_dump, -D db_dump=...) joining the live environment
-- read-only.  Keys and values are printable text in postlink's tables.
function M.db_table(dbhome, name)
    local cmd = string.format("%s -p -h '%s' %s.db 2>&1", db_dump or "db5.3_dump", dbhome, name)
    local p = io.popen(cmd)
    local out = p:read("*a")
    p:close()
    local t, in_data, key = {}, false, nil
    for line in out:gmatch("[^\n]*") do
        if line == "HEADER=END" then
            in_data = true
        elseif line == "DATA=END" then
            in_data = false
        elseif in_data and line:sub(1, 1) == " " then
            if key == nil then
                key = line:sub(2)
            else
                t[key] = line:sub(2)
                key = nil
            end
        end
    end
    if not out:find("DATA=END", 1, true) then error("db_dump " .. name .. " failed: " .. out) end
    return t
end

-- Keys of after that are not in before.
function M.new_keys(before, after)
    local k = {}
    for key in pairs(after) do
        if before[key] == nil then k[#k + 1] = key end
    end
    table.sort(k)
    return k
end

-- Run a shell command; its output (stdout and stderr) and whether it
-- exited 0.
function M.run(cmd)
    local p = io.popen(cmd .. " 2>&1")
    local out = p:read("*a")
    local ok = p:close()
    return out, ok == true
end
function M.run_ok(cmd)
    local _, ok = M.run(cmd)
    return ok
end

return M
