-- Shared helpers for the miltertest scripts. The runner defines `port`.
-- miltertest prints no Lua error text, so every failure echoes first.

function fail(msg)
  -- miltertest swallows the text of a Lua error: say it ourselves first.
  io.stderr:write("FAIL: " .. msg .. "\n")
  error(msg)
end

function check(cond, msg)
  if not cond then fail(msg) end
end

function expect_reply(conn, want, what)
  local got = mt.getreply(conn)
  if got ~= want then
    fail(what .. ": reply " .. tostring(got) .. ", expected " .. tostring(want))
  end
end

function open(actions)
  local conn = mt.connect("inet:" .. port .. "@127.0.0.1", 10, 0.2)
  check(conn ~= nil, "mt.connect() failed")
  -- Postfix's offer: version 6, every action, every step.
  check(mt.negotiate(conn, 6, 0x1ff, 0x1fffff) == nil, "mt.negotiate() failed")
  mt.macro(conn, SMFIC_CONNECT, "j", "mx.example.org", "{daemon_name}", "smtpd")
  check(mt.conninfo(conn, "client.example.net", "192.0.2.9") == nil, "mt.conninfo() failed")
  return conn
end

-- One message up to the end of headers; `headers` is a list of {name, value}.
function message(conn, from, rcpts, headers)
  mt.macro(conn, SMFIC_MAIL, "{auth_authen}", "alice", "i", "4AbCdEf")
  check(mt.mailfrom(conn, from) == nil, "mt.mailfrom() failed")
  for _, r in ipairs(rcpts) do
    check(mt.rcptto(conn, r) == nil, "mt.rcptto() failed")
  end
  for _, h in ipairs(headers) do
    check(mt.header(conn, h[1], h[2]) == nil, "mt.header(" .. h[1] .. ") failed")
  end
  -- miltertest, like an MTA, refuses to send a step the filter switched off.
  if not mt.test_option(conn, SMFIP_NOEOH) then
    check(mt.eoh(conn) == nil, "mt.eoh() failed")
  end
end

function body(conn, text)
  if not mt.test_option(conn, SMFIP_NOBODY) then
    check(mt.bodystring(conn, text) == nil, "mt.bodystring() failed")
  end
end
