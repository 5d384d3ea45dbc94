-- tag.lua -- miltertest(8) script for the postlink-tag milter's decisions
-- (run by tests/integration/t_milter_tag.sh, which starts the milter with
-- no postlink-xmppd running, so presence is always "unknown").  Globals
-- from -D: lib (mtlib.lua), sock, domain (enabled_domains), xdomain (the
-- XMPP domain: alice@domain is linked to alice@xdomain with sharing on,
-- dave@domain to dave@xdomain with sharing off, carol is not linked),
-- xmpp_jid (postlink-xmppd's own JID).
--   tag:      alice's mail on her SASL session gets Jabber-ID, X-Mail-Id
--             and X-Postlink-Tag (replacing what her program wrote), and,
--             since bob is local, X-Messenger-Presence and -Chat;
--   annotate: the same mail arriving for bob (same header fields and
--             body, the tag fed back from "tag") gets X-Messenger-Presence
--             and X-Messenger-Chat; replayed to carol or with a tampered
--             signature it gets nothing;
--   strip:    a stranger's forged Jabber-ID / X-Mail-Id / X-Postlink-Tag /
--             X-Messenger-Presence / X-Messenger-Chat (mixed case): the
--             presence fields and the unverifiable tag are removed, the
--             Jabber-ID stays (postlink-tag(8)) and nothing is added;
--   leave:    an unlinked sender's mail, a From that is not the SASL
--             login, and mail without Message-ID are not tagged.
local t = dofile(lib)
mt.set_timeout(10)

t.main(function()
    local alice, bob, carol, dave = "alice@" .. domain, "bob@" .. domain, "carol@" .. domain, "dave@" .. domain
    local stranger = "mallory@elsewhere.test"
    local body = "See you at noon.\r\nAlice\r\n"

    local function chat_link(mailid)
        return "<xmpp:" .. xmpp_jid .. "?message;body=" .. mailid .. ">"
    end

    -- The visible part of a mail from alice to bob.
    local function alice_to_bob(subject)
        return {
            {"From", "Alice <" .. alice .. ">"},
            {"To", "Bob <" .. bob .. ">"},
            {"Cc", "<" .. carol .. ">"},
            {"Subject", subject},
            {"Date", t.rfc5322_date()},
            {"Message-ID", "<" .. t.unique("tag") .. "@" .. domain .. ">"},
        }
    end

    local function with(h, extra)
        local out = {}
        for _, x in ipairs(h) do out[#out + 1] = x end
        for _, x in ipairs(extra) do out[#out + 1] = x end
        return out
    end

    -- ---- tag --------------------------------------------------------------------
    local visible = alice_to_bob("Lunch on Friday")
    local conn, stage, reply = t.send(sock, {
        auth = alice, from = "<" .. alice .. ">", rcpt = {"<" .. bob .. ">"}, body = body,
        headers = with(visible, {{"jabber-id", "mallory@chat.elsewhere.test"},
                                 {"X-Mail-Id", "aaaaaaaaaaaaaaaaaaaaaaaaaa"}}),
    })
    local w = "alice's mail on her session"
    t.reply_is(stage, reply, SMFIR_CONTINUE, w .. ": accepted")
    t.has(conn, w .. ": Jabber-ID: alice@" .. xdomain .. " added", MT_HDRADD, "Jabber-ID", "alice@" .. xdomain)
    t.hasnt(conn, w .. ": (not another Jabber-ID)", MT_HDRADD, "Jabber-ID", "mallory@chat.elsewhere.test")
    local mailid = t.added(conn, "X-Mail-Id") or ""
    local tag = t.added(conn, "X-Postlink-Tag") or ""
    t.ok(mailid:match("^[a-z2-7]+$") and #mailid == 26, w .. ": X-Mail-Id of 26 base32 characters added")
    -- (only what any version of the tag has: v=, k=, t=, s=)
    if not t.ok(tag:match("^v=%d+;") and tag:find("; k=k1;", 1, true) and tag:match("; t=%d+") and
                tag:match("; s=[A-Za-z0-9+/]+"), w .. ": X-Postlink-Tag signed with key k1 added") then
        t.diag("X-Postlink-Tag: " .. tag)
    end
    t.has(conn, w .. ": the Jabber-ID her program wrote (lower case) removed", MT_HDRDELETE, "Jabber-ID", 1)
    t.has(conn, w .. ": the X-Mail-Id her program wrote removed", MT_HDRDELETE, "X-Mail-Id", 1)
    t.has(conn, w .. ": bob is local: X-Messenger-Presence: unknown (no postlink-xmppd)", MT_HDRADD,
          "X-Messenger-Presence", "unknown")
    t.has(conn, w .. ": and X-Messenger-Chat with the mail-id", MT_HDRADD, "X-Messenger-Chat", chat_link(mailid))
    mt.disconnect(conn)

    do
        local conn2, stage2, reply2 = t.send(sock, {
            auth = alice, from = "<" .. alice .. ">", rcpt = {"<" .. bob .. ">"}, body = body,
            headers = alice_to_bob("Lunch again"),
        })
        t.reply_is(stage2, reply2, SMFIR_CONTINUE, "alice's second mail: accepted")
        local id2 = t.added(conn2, "X-Mail-Id")
        t.ok(id2 ~= nil and id2 ~= mailid, "alice's second mail: a mail-id of its own")
        t.hasnt(conn2, "alice's second mail: nothing removed", MT_HDRDELETE)
        mt.disconnect(conn2)
    end

    do
        local c, s, r = t.send(sock, {
            auth = dave, from = "<" .. dave .. ">", rcpt = {"<" .. bob .. ">"}, body = body,
            headers = {{"From", "<" .. dave .. ">"}, {"To", "<" .. bob .. ">"}, {"Subject", "hi"},
                       {"Message-ID", "<" .. t.unique("dave") .. "@" .. domain .. ">"}},
        })
        w = "dave (linked, sharing off) mails bob"
        t.reply_is(s, r, SMFIR_CONTINUE, w .. ": accepted")
        t.has(c, w .. ": tagged", MT_HDRADD, "Jabber-ID", "dave@" .. xdomain)
        t.hasnt(c, w .. ": no presence shown", MT_HDRADD, "X-Messenger-Presence")
        mt.disconnect(c)
    end

    -- ---- annotate ---------------------------------------------------------------
    -- alice's mail as it reaches bob's site: her headers, the three that
    -- postlink-tag added, the same body.
    local tagged = with(visible, {{"Jabber-ID", "alice@" .. xdomain}, {"X-Mail-Id", mailid},
                                  {"X-Postlink-Tag", tag}})

    conn, stage, reply = t.send(sock, {
        ip = "127.0.0.9", from = "<" .. alice .. ">", rcpt = {"<" .. bob .. ">"}, body = body,
        headers = tagged,
    })
    w = "alice's tagged mail arriving for bob"
    t.reply_is(stage, reply, SMFIR_CONTINUE, w .. ": accepted")
    t.has(conn, w .. ": X-Messenger-Presence: unknown added", MT_HDRADD, "X-Messenger-Presence", "unknown")
    t.has(conn, w .. ": X-Messenger-Chat: " .. chat_link(mailid) .. " added", MT_HDRADD, "X-Messenger-Chat",
          chat_link(mailid))
    t.hasnt(conn, w .. ": (not a chat link for another mail-id)", MT_HDRADD, "X-Messenger-Chat",
            chat_link(string.rep("a", 26)))
    t.hasnt(conn, w .. ": its tag is kept", MT_HDRDELETE, "X-Postlink-Tag")
    t.hasnt(conn, w .. ": its mail-id is kept", MT_HDRDELETE, "X-Mail-Id")
    mt.disconnect(conn)

    conn, stage, reply = t.send(sock, {
        ip = "127.0.0.9", from = "<" .. alice .. ">", rcpt = {"<" .. dave .. ">"}, body = body,
        headers = tagged,
    })
    w = "the same mail replayed to dave, who was not a recipient"
    t.reply_is(stage, reply, SMFIR_CONTINUE, w .. ": accepted")
    t.hasnt(conn, w .. ": no X-Messenger-Presence", MT_HDRADD, "X-Messenger-Presence")
    t.hasnt(conn, w .. ": no X-Messenger-Chat", MT_HDRADD, "X-Messenger-Chat")
    mt.disconnect(conn)

    do
        -- change one signature character well past the first few
        local s_at = tag:find("; s=", 1, true)
        local bad = tag
        if s_at then
            local i = s_at + 4 + 30
            local ch = tag:sub(i, i)
            bad = tag:sub(1, i - 1) .. (ch == "A" and "B" or "A") .. tag:sub(i + 1)
        end
        local h = with(visible, {{"Jabber-ID", "alice@" .. xdomain}, {"X-Mail-Id", mailid},
                                 {"X-Postlink-Tag", bad}})
        conn, stage, reply = t.send(sock, {
            ip = "127.0.0.9", from = "<" .. alice .. ">", rcpt = {"<" .. bob .. ">"}, body = body, headers = h,
        })
        w = "alice's mail for bob with its signature's 31st character changed"
        t.reply_is(stage, reply, SMFIR_CONTINUE, w .. ": accepted")
        t.has(conn, w .. ": X-Postlink-Tag removed", MT_HDRDELETE, "X-Postlink-Tag", 1)
        t.has(conn, w .. ": X-Mail-Id removed", MT_HDRDELETE, "X-Mail-Id", 1)
        t.hasnt(conn, w .. ": no X-Messenger-Presence", MT_HDRADD, "X-Messenger-Presence")
        mt.disconnect(conn)
    end

    -- ---- strip ------------------------------------------------------------------
    conn, stage, reply = t.send(sock, {
        ip = "127.0.0.9", from = "<" .. stranger .. ">", rcpt = {"<" .. bob .. ">"}, body = body,
        headers = {
            {"From", "<" .. stranger .. ">"}, {"To", "<" .. bob .. ">"}, {"Subject", "trust me"},
            {"Date", t.rfc5322_date()}, {"Message-ID", "<" .. t.unique("forged") .. "@elsewhere.test>"},
            {"jabber-id", "alice@" .. xdomain},
            {"x-mail-id", mailid},
            {"X-POSTLINK-TAG", "v=1; k=k1; t=" .. os.time() .. "; s=" .. string.rep("A", 43) .. "="},
            {"x-messenger-presence", "online"},
            {"X-MESSENGER-CHAT", "<xmpp:" .. stranger .. "?message>"},
            {"X-Messenger-Presence", "online"},
        },
    })
    w = "a stranger's forged tag and presence fields"
    t.reply_is(stage, reply, SMFIR_CONTINUE, w .. ": delivered")
    t.has(conn, w .. ": 2nd X-Messenger-Presence removed", MT_HDRDELETE, "X-Messenger-Presence", 2)
    t.has(conn, w .. ": 1st (lower case) X-Messenger-Presence removed", MT_HDRDELETE, "X-Messenger-Presence", 1)
    t.has(conn, w .. ": X-MESSENGER-CHAT removed", MT_HDRDELETE, "X-Messenger-Chat", 1)
    t.has(conn, w .. ": X-POSTLINK-TAG removed", MT_HDRDELETE, "X-Postlink-Tag", 1)
    t.has(conn, w .. ": x-mail-id removed", MT_HDRDELETE, "X-Mail-Id", 1)
    t.hasnt(conn, w .. ": the Jabber-ID stays (it never yields presence)", MT_HDRDELETE, "Jabber-ID")
    t.hasnt(conn, w .. ": nothing added", MT_HDRADD)
    mt.disconnect(conn)

    -- ---- leave ------------------------------------------------------------------
    local function untouched(what, msg)
        local c, s, r = t.send(sock, msg)
        t.reply_is(s, r, SMFIR_CONTINUE, what .. ": accepted")
        t.hasnt(c, what .. ": no header field added", MT_HDRADD)
        t.hasnt(c, what .. ": none removed", MT_HDRDELETE)
        mt.disconnect(c)
    end

    untouched("carol (not linked) mails bob on her session", {
        auth = carol, from = "<" .. carol .. ">", rcpt = {"<" .. bob .. ">"}, body = body,
        headers = {{"From", "<" .. carol .. ">"}, {"To", "<" .. bob .. ">"}, {"Subject", "hi"},
                   {"Message-ID", "<" .. t.unique("carol") .. "@" .. domain .. ">"}},
    })
    untouched("alice's session with another From", {
        auth = alice, from = "<" .. alice .. ">", rcpt = {"<" .. bob .. ">"}, body = body,
        headers = {{"From", "<" .. stranger .. ">"}, {"To", "<" .. bob .. ">"}, {"Subject", "hi"},
                   {"Message-ID", "<" .. t.unique("other") .. "@" .. domain .. ">"}},
    })
    untouched("alice's mail without Message-ID", {
        auth = alice, from = "<" .. alice .. ">", rcpt = {"<" .. bob .. ">"}, body = body,
        headers = {{"From", "<" .. alice .. ">"}, {"To", "<" .. bob .. ">"}, {"Subject", "hi"}},
    })
    untouched("mail from alice without SASL", {
        ip = "127.0.0.9", from = "<" .. alice .. ">", rcpt = {"<" .. bob .. ">"}, body = body,
        headers = {{"From", "<" .. alice .. ">"}, {"To", "<" .. bob .. ">"}, {"Subject", "hi"},
                   {"Message-ID", "<" .. t.unique("nosasl") .. "@" .. domain .. ">"}},
    })

    t.done()
end)
