-- stop.lua -- miltertest(8) script for tests/integration/t_milter_stop.sh:
-- with role=held, one transaction is started (MAIL, RCPT), the file
-- `marker` is made, and the rest (headers, body, end of message) is sent
-- only once the file `go` exists -- the shell stops the milter in
-- between.  With role=new, one new session is tried while the milter is
-- stopping: it must not be served.  Globals from -D: lib, sock, role,
-- rcpt, and for held: marker, go.
local t = dofile(lib)
mt.set_timeout(30)

local function exists(path)
    local f = io.open(path, "r")
    if f then f:close() end
    return f ~= nil
end

t.main(function()
    if role == "held" then
        local conn = mt.connect(sock, 200, 0.05)
        if conn == nil then error("cannot connect to " .. sock) end
        assert(mt.negotiate(conn, nil, nil, nil) == nil, "negotiate")
        if not mt.test_option(conn, SMFIP_NOCONNECT) then
            assert(mt.conninfo(conn, "client.test", "127.0.0.1") == nil)
        end
        if not mt.test_option(conn, SMFIP_NOHELO) then assert(mt.helo(conn, "client.test") == nil) end
        assert(mt.macro(conn, SMFIC_MAIL, "i", t.unique("QID")) == nil)
        assert(mt.mailfrom(conn, "<friend@elsewhere.test>") == nil)
        t.ok(mt.getreply(conn) == SMFIR_CONTINUE, "held: MAIL accepted")
        assert(mt.rcptto(conn, "<" .. rcpt .. ">") == nil)
        t.ok(mt.getreply(conn) == SMFIR_CONTINUE, "held: RCPT accepted")
        io.open(marker, "w"):close()
        local waited = 0
        while not exists(go) and waited < 300 do
            os.execute("sleep 0.1")
            waited = waited + 1
        end
        t.ok(exists(go), "held: the shell said go")
        assert(mt.header(conn, "From", "<friend@elsewhere.test>") == nil)
        assert(mt.header(conn, "Message-ID", "<" .. t.unique("held") .. "@elsewhere.test>") == nil)
        if not mt.test_option(conn, SMFIP_NOEOH) then assert(mt.eoh(conn) == nil) end
        if not mt.test_option(conn, SMFIP_NOBODY) then assert(mt.bodystring(conn, "Hello.\r\n") == nil) end
        local err = mt.eom(conn)
        local r = err == nil and mt.getreply(conn) or nil
        t.ok(err == nil and (r == SMFIR_ACCEPT or r == SMFIR_CONTINUE),
             "held: the transaction begun before the stop is finished and accepted (" ..
             tostring(err or t.reply_name(r)) .. ")")
        t.ok(mt.eom_check(conn, MT_RCPTADD, "<" .. device .. ">"),
             "held: ... with the milter's work done (the device added as a recipient)")
        mt.disconnect(conn)
    else
        local conn = mt.connect(sock, 20, 0.05)
        local served = false
        if conn ~= nil then
            local called, err = pcall(mt.negotiate, conn, nil, nil, nil)
            served = called and err == nil
            pcall(mt.disconnect, conn)
        end
        t.ok(not served, "new: a session opened during the stop is not served")
    end
    t.done()
end)
