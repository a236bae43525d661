dofile(dir .. "/common.lua")
local conn = open()
message(conn, "<alice@example.org>", {"<bob@example.net>"}, {
  {"From", "alice@example.org"},
  {"Subject", "original"},
  {"X-Delete-Me", "gone soon"},
  {"X-Test-Action", "add-header,insert-header,change-subject,delete-header,replace-body=300,add-rcpt=<carol@example.org>,del-rcpt=<bob@example.net>,chgfrom=<bounce@example.org>,quarantine"},
})
body(conn, "original body\r\n")
check(mt.eom(conn) == nil, "mt.eom() failed")
expect_reply(conn, SMFIR_ACCEPT, "EOM")
check(mt.eom_check(conn, MT_HDRADD, "X-Test-Added", "yes"), "header not added")
check(mt.eom_check(conn, MT_HDRINSERT, "X-Test-Inserted", "first", 0), "header not inserted at 0")
check(mt.eom_check(conn, MT_HDRCHANGE, "Subject", "changed by milter"), "Subject not changed")
check(mt.eom_check(conn, MT_HDRDELETE, "X-Delete-Me"), "X-Delete-Me not deleted")
check(mt.eom_check(conn, MT_BODYCHANGE), "body not replaced")
check(mt.eom_check(conn, MT_RCPTADD, "<carol@example.org>"), "recipient not added")
check(mt.eom_check(conn, MT_RCPTDELETE, "<bob@example.net>"), "recipient not deleted")
check(mt.eom_check(conn, MT_QUARANTINE, "test quarantine"), "not quarantined")
check(mt.getheader(conn, "X-Test-Added", 0) == "yes", "getheader X-Test-Added")
mt.disconnect(conn)
mt.echo("modifications ok")
