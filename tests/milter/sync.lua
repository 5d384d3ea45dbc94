-- sync.lua -- miltertest(8) script for the postlink-sync milter's decisions
-- (run by tests/integration/t_milter_sync.sh, which starts the milter and
-- sets up the store).  Globals from -D: lib (mtlib.lua), sock, dbhome,
-- domain (enabled_domains), phone and laptop (alice's registered
-- devices), peer (an address in sync_peers), db_dump, postlinkctl,
-- swaks, lmtp (postlink-syncd's LMTP socket), cert_qid and cert_client
-- (the queue id and client address postlink-policyd recorded as a sync
-- peer's by its TLS client certificate).
--   route: alice's control from her device, on her SASL session (or from
--          a sync peer), to her own address: the recipient is replaced
--          by a route address under sync_transport_domain whose token is
--          in the store's route table for (alice, device); accepted.
--   refuse: a malformed control and a control without Message-ID are
--          550 5.6.0 (postlink-sync(8)); nothing is routed.
--   strip: a stranger's (or another user's) control is not routed and
--          its sync headers are removed; forged X-Postlink-State /
--          X-Postlink-Forwarded in any letter case are removed.
--   devices: ordinary mail to alice is also addressed to her devices.
--   release: a routed control that postlink-syncd holds because its
--          target has not arrived yet is released when the target comes
--          through the milter, which adds X-Postlink-State to it.
local t = dofile(lib)
mt.set_timeout(10)

t.main(function()
    local transport = "sync.postlink.invalid"
    local alice, bob = "alice@" .. domain, "bob@" .. domain
    local stranger = "mallory@elsewhere.test"

    local function control_headers(from, word, target, extra)
        local h = {
            {"From", from},
            {"To", "<" .. alice .. ">"},
            {"Date", t.rfc5322_date()},
            {"Subject", "control"},
            {"Message-ID", "<" .. t.unique("ctl") .. "@devices.test>"},
            {"X-Control", word},
        }
        if target then h[#h + 1] = {"X-Control-Target", target} end
        for _, x in ipairs(extra or {}) do h[#h + 1] = x end
        return h
    end

    -- A fresh X-Control-Target (a message nobody has sent yet).
    local function new_target()
        return "<" .. t.unique("m") .. "@elsewhere.test>"
    end

    local function route_addr(user, token)
        return "<" .. user:gsub("@", "=") .. "+" .. token .. "@" .. transport .. ">"
    end

    -- A control that the milter should route; checks the route it recorded.
    -- Returns the route address ("<...>"), or nil.
    local function expect_routed(what, msg, user, sender)
        local routed
        local before = t.db_table(dbhome, "route")
        local conn, stage, reply = t.send(sock, msg)
        t.reply_is(stage, reply, SMFIR_CONTINUE, what .. ": accepted")
        t.has(conn, what .. ": the recipient " .. user .. " is removed", MT_RCPTDELETE, "<" .. user .. ">")
        local after = t.db_table(dbhome, "route")
        local new = t.new_keys(before, after)
        t.ok(#new == 1, what .. ": one route token recorded")
        if #new == 1 then
            local u, s = after[new[1]]:match("^%d+ (%S+) (%S+)$")
            if not t.ok(u == user and s == sender, what .. ": the route is for " .. user .. " sent by " .. sender) then
                t.diag("route " .. new[1] .. " = " .. after[new[1]])
            end
            routed = route_addr(user, new[1])
            t.has(conn, what .. ": the route address with that token is added", MT_RCPTADD, routed)
            t.hasnt(conn, what .. ": (a route address with another token is not)", MT_RCPTADD,
                    route_addr(user, string.rep("0", #new[1])))
        else
            t.diag("new route keys: " .. table.concat(new, " "))
        end
        t.hasnt(conn, what .. ": the control keeps its X-Control", MT_HDRDELETE, "X-Control")
        t.hasnt(conn, what .. ": the devices are not added (postlink-syncd fans out)", MT_RCPTADD,
                "<" .. laptop .. ">")
        mt.disconnect(conn)
        return routed
    end

    -- A control that must be refused with the given text; nothing routed.
    local function expect_refused(what, msg, text)
        local before = t.db_table(dbhome, "route")
        local conn, stage, reply = t.send(sock, msg)
        t.reply_is(stage, reply, SMFIR_REPLYCODE, what .. ": refused")
        if not t.has(conn, what .. ": with 550 5.6.0 " .. text, MT_SMTPREPLY, "550", "5.6.0", text) then
            t.diag("wanted: 550 5.6.0 " .. text)
        end
        t.ok(#t.new_keys(before, t.db_table(dbhome, "route")) == 0, what .. ": no route recorded")
        t.hasnt(conn, what .. ": no recipient removed", MT_RCPTDELETE, "<" .. alice .. ">")
        mt.disconnect(conn)
    end

    -- A control that must not act: delivered to alice as ordinary mail with
    -- its sync headers removed.
    local function expect_stripped(what, msg, names)
        local before = t.db_table(dbhome, "route")
        local conn, stage, reply = t.send(sock, msg)
        t.reply_is(stage, reply, SMFIR_CONTINUE, what .. ": delivered")
        t.hasnt(conn, what .. ": the recipient alice stays", MT_RCPTDELETE, "<" .. alice .. ">")
        t.ok(#t.new_keys(before, t.db_table(dbhome, "route")) == 0, what .. ": no route recorded")
        for _, n in ipairs(names) do
            t.has(conn, what .. ": " .. n .. " removed", MT_HDRDELETE, n, 1)
        end
        t.has(conn, what .. ": as ordinary mail it also goes to alice's device " .. phone, MT_RCPTADD,
              "<" .. phone .. ">")
        mt.disconnect(conn)
    end

    -- ---- route ------------------------------------------------------------------
    expect_routed("control from alice's device on her session", {
        auth = alice, from = "<" .. phone .. ">", rcpt = {"<" .. alice .. ">"},
        headers = control_headers("Alice <" .. phone .. ">", "read", new_target()),
    }, alice, phone)

    expect_routed("control from a sync peer's client address, no SASL", {
        ip = peer, from = "<" .. phone .. ">", rcpt = {"<" .. alice .. ">"},
        headers = control_headers("<" .. phone .. ">", "saved", new_target()),
    }, alice, phone)

    expect_routed("control from a sync peer known by its certificate (postlink-policyd), no SASL", {
        ip = cert_client, qid = cert_qid, from = "<" .. phone .. ">", rcpt = {"<" .. alice .. ">"},
        headers = control_headers("<" .. phone .. ">", "replied", new_target()),
    }, alice, phone)

    expect_stripped("the same client and queue id again (the certificate record was used up)", {
        ip = cert_client, qid = cert_qid, from = "<" .. laptop .. ">", rcpt = {"<" .. alice .. ">"},
        headers = control_headers("<" .. laptop .. ">", "replied", new_target()),
    }, {"X-Control", "X-Control-Target"})

    -- ---- refuse -----------------------------------------------------------------
    expect_refused("control with an unknown state word", {
        auth = alice, from = "<" .. phone .. ">", rcpt = {"<" .. alice .. ">"},
        headers = control_headers("<" .. phone .. ">", "frobnicate", new_target()),
    }, 'unknown X-Control state "frobnicate"')

    expect_refused("control without X-Control-Target", {
        auth = alice, from = "<" .. phone .. ">", rcpt = {"<" .. alice .. ">"},
        headers = control_headers("<" .. phone .. ">", "read", nil),
    }, "X-Control-Target missing")

    do -- postlink-sync(8): "so is a control without a Message-ID"
        local h = {}
        for _, x in ipairs(control_headers("<" .. phone .. ">", "read", new_target())) do
            if x[1] ~= "Message-ID" then h[#h + 1] = x end
        end
        expect_refused("control without Message-ID", {
            auth = alice, from = "<" .. phone .. ">", rcpt = {"<" .. alice .. ">"}, headers = h,
        }, "a control message needs a Message-ID (it is applied once per Message-ID)")
    end

    -- ---- strip ------------------------------------------------------------------
    expect_stripped("control from an unauthenticated stranger", {
        ip = "127.0.0.9", from = "<" .. stranger .. ">", rcpt = {"<" .. alice .. ">"},
        headers = control_headers("<" .. stranger .. ">", "deleted", new_target(),
                                  {{"X-Control-Version", "7"}}),
    }, {"X-Control", "X-Control-Target", "X-Control-Version"})

    expect_stripped("control from bob's session to alice", {
        auth = bob, from = "<" .. bob .. ">", rcpt = {"<" .. alice .. ">"},
        headers = control_headers("<" .. bob .. ">", "read", new_target()),
    }, {"X-Control", "X-Control-Target"})

    expect_stripped("control on alice's session from an address that is not her device", {
        auth = alice, from = "<" .. stranger .. ">", rcpt = {"<" .. alice .. ">"},
        headers = control_headers("<" .. stranger .. ">", "read", new_target()),
    }, {"X-Control", "X-Control-Target"})

    do -- forged postlink headers in any letter case, no X-Control
        local conn, stage, reply = t.send(sock, {
            ip = "127.0.0.9", from = "<" .. stranger .. ">", rcpt = {"<" .. alice .. ">"},
            headers = {
                {"From", "<" .. stranger .. ">"}, {"To", "<" .. alice .. ">"},
                {"Message-ID", "<" .. t.unique("forged") .. "@elsewhere.test>"},
                {"x-postlink-state", "read"},
                {"X-POSTLINK-FORWARDED", "by mail." .. domain .. "; user=" .. alice .. "; from=" .. phone .. "; version=9"},
                {"X-Postlink-State", "saved, read"},
                {"x-Control-Since", "3"},
            },
        })
        local w = "forged sync headers from a stranger"
        t.reply_is(stage, reply, SMFIR_CONTINUE, w .. ": delivered")
        t.has(conn, w .. ": the 2nd X-Postlink-State removed", MT_HDRDELETE, "X-Postlink-State", 2)
        t.has(conn, w .. ": the 1st X-Postlink-State (lower case) removed", MT_HDRDELETE, "X-Postlink-State", 1)
        t.has(conn, w .. ": X-POSTLINK-FORWARDED removed", MT_HDRDELETE, "X-Postlink-Forwarded", 1)
        t.has(conn, w .. ": x-Control-Since removed", MT_HDRDELETE, "X-Control-Since", 1)
        t.hasnt(conn, w .. ": no 3rd X-Postlink-State to remove", MT_HDRDELETE, "X-Postlink-State", 3)
        t.hasnt(conn, w .. ": no X-Postlink-State added (no state held)", MT_HDRADD, "X-Postlink-State")
        mt.disconnect(conn)
    end

    do -- alice's own session may keep them for mail to her devices
        local conn, stage, reply = t.send(sock, {
            auth = alice, from = "<" .. alice .. ">", rcpt = {"<" .. phone .. ">"},
            headers = {
                {"From", "<" .. alice .. ">"}, {"To", "<" .. phone .. ">"},
                {"Message-ID", "<" .. t.unique("own") .. "@" .. domain .. ">"},
                {"X-Postlink-State", "read"},
            },
        })
        local w = "X-Postlink-State on alice's session to her device"
        t.reply_is(stage, reply, SMFIR_CONTINUE, w .. ": delivered")
        t.hasnt(conn, w .. ": kept", MT_HDRDELETE, "X-Postlink-State")
        mt.disconnect(conn)
    end

    -- ---- devices ----------------------------------------------------------------
    do
        local conn, stage, reply = t.send(sock, {
            ip = "127.0.0.9", from = "<" .. stranger .. ">", rcpt = {"<" .. alice .. ">"},
            headers = {
                {"From", "<" .. stranger .. ">"}, {"To", "<" .. alice .. ">"},
                {"Subject", "hello"}, {"Message-ID", "<" .. t.unique("plain") .. "@elsewhere.test>"},
            },
        })
        local w = "ordinary mail to alice"
        t.reply_is(stage, reply, SMFIR_CONTINUE, w .. ": delivered")
        t.has(conn, w .. ": also to her device " .. phone, MT_RCPTADD, "<" .. phone .. ">")
        t.has(conn, w .. ": also to her device " .. laptop, MT_RCPTADD, "<" .. laptop .. ">")
        t.hasnt(conn, w .. ": not to anyone else", MT_RCPTADD, "<" .. bob .. ">")
        t.hasnt(conn, w .. ": alice stays a recipient", MT_RCPTDELETE, "<" .. alice .. ">")
        t.hasnt(conn, w .. ": no header removed", MT_HDRDELETE)
        mt.disconnect(conn)
    end

    do
        local conn, stage, reply = t.send(sock, {
            ip = "127.0.0.9", from = "<" .. phone .. ">", rcpt = {"<" .. alice .. ">"},
            headers = {
                {"From", "<" .. phone .. ">"}, {"To", "<" .. alice .. ">"},
                {"Message-ID", "<" .. t.unique("fromdev") .. "@devices.test>"},
            },
        })
        local w = "mail from alice's phone to alice"
        t.reply_is(stage, reply, SMFIR_CONTINUE, w .. ": delivered")
        t.has(conn, w .. ": goes to her laptop", MT_RCPTADD, "<" .. laptop .. ">")
        t.hasnt(conn, w .. ": not back to the phone that sent it", MT_RCPTADD, "<" .. phone .. ">")
        mt.disconnect(conn)
    end

    do
        local conn, stage, reply = t.send(sock, {
            ip = "127.0.0.9", from = "<" .. stranger .. ">", rcpt = {"<" .. bob .. ">"},
            headers = {
                {"From", "<" .. stranger .. ">"}, {"To", "<" .. bob .. ">"},
                {"Message-ID", "<" .. t.unique("bob") .. "@elsewhere.test>"},
            },
        })
        local w = "ordinary mail to bob, who has no devices"
        t.reply_is(stage, reply, SMFIR_CONTINUE, w .. ": delivered")
        t.hasnt(conn, w .. ": no recipient added", MT_RCPTADD, "<" .. phone .. ">")
        t.hasnt(conn, w .. ": no recipient added (laptop)", MT_RCPTADD, "<" .. laptop .. ">")
        mt.disconnect(conn)
    end

    do -- nobody may write to the route domain
        local conn, stage, reply, i = t.send(sock, {
            ip = "127.0.0.9", from = "<" .. stranger .. ">",
            rcpt = {"<" .. alice .. ">", route_addr(alice, string.rep("a", 32))},
        })
        t.ok(stage == "rcpt" and i == 2 and reply == SMFIR_REPLYCODE,
             "a recipient under " .. transport .. " is refused at RCPT")
        mt.disconnect(conn)
    end


    -- ---- release ----------------------------------------------------------------
    do
        local target = "<" .. t.unique("later") .. "@elsewhere.test>"
        local h = control_headers("<" .. phone .. ">", "read", target)
        local routed = expect_routed("control for a message that has not arrived yet", {
            auth = alice, from = "<" .. phone .. ">", rcpt = {"<" .. alice .. ">"}, headers = h,
        }, alice, phone)
        local w = "that control handed to postlink-syncd over LMTP"
        if t.ok(routed ~= nil, w .. ": (route address known)") then
            local cmd = string.format("%s --socket '%s' --protocol LMTP --timeout 20 --from '%s' --to '%s'",
                                      swaks, lmtp, phone, routed:sub(2, -2))
            for _, x in ipairs(h) do cmd = cmd .. string.format(" --header '%s: %s'", x[1], x[2]) end
            local out = t.run(cmd .. " --body 'read it'")
            if not t.ok(out:find("250 2.0.0 read applied=0 pending=1", 1, true), w .. ": held (250 ... pending=1)") then
                t.diag(out)
            end
        end
        t.ok(t.run_ok(postlinkctl .. " pending list " .. alice ..
                      " --json | jq -e 'map(select(.target == \"" .. target .. "\")) | length == 1'"),
             "postlinkctl pending list shows it held for " .. target)
        local conn, stage, reply = t.send(sock, {
            ip = "127.0.0.9", from = "<" .. stranger .. ">", rcpt = {"<" .. alice .. ">"},
            headers = {{"From", "<" .. stranger .. ">"}, {"To", "<" .. alice .. ">"}, {"Message-ID", target}},
        })
        w = "the target arriving for alice"
        t.reply_is(stage, reply, SMFIR_CONTINUE, w .. ": delivered")
        t.has(conn, w .. ": carries X-Postlink-State: read", MT_HDRADD, "X-Postlink-State", "read")
        t.has(conn, w .. ": and goes to her devices", MT_RCPTADD, "<" .. laptop .. ">")
        mt.disconnect(conn)
        t.ok(t.run_ok(postlinkctl .. " state show " .. alice .. " '" .. target ..
                      "' --json | jq -e '.[0].states == [\"read\"]'"),
             "postlinkctl state show: " .. target .. " is read")
        t.ok(t.run_ok(postlinkctl .. " pending list " .. alice ..
                      " --json | jq -e 'map(select(.target == \"" .. target .. "\")) | length == 0'"),
             "and no longer held")
    end

    t.done()
end)
