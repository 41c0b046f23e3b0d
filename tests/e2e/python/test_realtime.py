"""The official Python client (python-socketio) against a running server (SERVER_URL)."""

import os
import queue
import sys
import time
import uuid

import requests
import socketio

BASE = os.environ["SERVER_URL"]
RESULTS = {"passed": 0, "failed": 0}


def api(method, path, token=None, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = requests.request(method, BASE + path, json=body, headers=headers, timeout=10)
    return r.status_code, r.json()


def signup(prefix):
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    status, body = api("POST", "/api/auth/signup", body={
        "username": name, "email": f"{name}@example.com", "password": "password-e2e"})
    assert status == 201, body
    return {"id": body["data"]["user"]["id"], "token": body["data"]["token"], "name": name}


def client(token, transports, how):
    events = queue.Queue()
    sio = socketio.Client(reconnection=False)

    @sio.on("*")
    def any_event(event, data=None):
        events.put((event, data))

    kwargs = {"transports": transports, "wait_timeout": 5}
    if how == "auth":
        kwargs["auth"] = {"token": token}
    elif how == "header":
        kwargs["headers"] = {"Authorization": f"Bearer {token}"}
    else:
        kwargs["headers"] = {"Cookie": f"token={token}"}
    sio.connect(BASE, **kwargs)
    return sio, events


def wait_for(events, name, timeout=5.0):
    """The next `name` event within `timeout` seconds in all (other events are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {name} within {timeout} s")
        try:
            event, data = events.get(timeout=left)
        except queue.Empty:
            raise AssertionError(f"no {name} within {timeout} s") from None
        if event == name:
            return data


def check(name, fn):
    try:
        fn()
        RESULTS["passed"] += 1
        print(f"ok - {name}")
    except Exception as e:  # noqa: BLE001 - report every failure and go on
        RESULTS["failed"] += 1
        print(f"not ok - {name}: {e!r}")


def round_trip(transports, how):
    a, b = signup("pya"), signup("pyb")
    _, created = api("POST", "/api/channels", a["token"], {"name": f"py-{a['name']}".lower()})
    channel = created["data"]["channel"]["id"]
    assert api("POST", f"/api/channels/{channel}/join", b["token"])[0] == 200
    sa, ea = client(a["token"], transports, how)
    sb, eb = client(b["token"], ["websocket"], "auth")
    try:
        for s in (sa, sb):
            ack = s.call("join-channel", {"channelId": channel}, timeout=5)
            assert ack == {"success": True, "data": {"channelId": channel}}, ack
        ack = sa.call("send-message", {"channelId": channel, "content": "hello from python"}, timeout=5)
        assert ack["success"], ack
        got = wait_for(eb, "new-message")
        assert got["id"] == ack["data"]["message"]["id"], got
        assert sa.call("typing-start", {"channelId": channel}, timeout=5)["success"]
        assert wait_for(eb, "user-typing")["user"]["id"] == a["id"]
        edited = sa.call("edit-message", {"messageId": got["id"], "content": "edited"}, timeout=5)
        assert edited["data"]["message"]["content"] == "edited", edited
        assert wait_for(eb, "message-edited")["content"] == "edited"
        deleted = sa.call("delete-message", {"messageId": got["id"]}, timeout=5)
        assert deleted["data"] == {"messageId": got["id"], "channelId": channel}, deleted
        assert wait_for(eb, "message-deleted")["messageId"] == got["id"]
    finally:
        sa.disconnect()
        sb.disconnect()


def attachment():
    a, b = signup("pyf"), signup("pyg")
    _, created = api("POST", "/api/channels", a["token"], {"name": f"pyfiles-{a['name']}".lower()})
    channel = created["data"]["channel"]["id"]
    assert api("POST", f"/api/channels/{channel}/join", b["token"])[0] == 200
    r = requests.post(BASE + "/api/upload", headers={"Authorization": f"Bearer {a['token']}"},
                      files={"file": ("voice.pdf", b"%PDF-1.4\n%%EOF\n", "audio/mpeg")}, timeout=10)
    assert r.status_code == 201, r.text
    file = r.json()["data"]["file"]
    assert file["fileType"] == "application/pdf", file
    sa, _ = client(a["token"], ["websocket"], "auth")
    sb, eb = client(b["token"], ["polling"], "auth")
    try:
        for s in (sa, sb):
            assert s.call("join-channel", {"channelId": channel}, timeout=5)["success"]
        ack = sa.call("send-message", {"channelId": channel, "content": "the report",
                                       "attachments": [file["key"]]}, timeout=5)
        assert ack["success"], ack
        got = wait_for(eb, "new-message")
        assert got["attachments"] == [file], got
        download = requests.get(BASE + got["attachments"][0]["fileUrl"],
                                headers={"Authorization": f"Bearer {b['token']}"}, timeout=10)
        assert download.status_code == 200, download.text
        assert download.content == b"%PDF-1.4\n%%EOF\n"
        assert download.headers["Content-Type"] == "application/pdf"
    finally:
        sa.disconnect()
        sb.disconnect()


def conversation():
    a, b = signup("pyc"), signup("pyd")
    sa, ea = client(a["token"], ["websocket"], "auth")
    sb, eb = client(b["token"], ["polling", "websocket"], "auth")
    try:
        status, dm = api("POST", "/api/dms", a["token"], {"userIds": [b["id"]]})
        assert status == 201, dm
        dm_id = dm["data"]["dm"]["id"]
        assert wait_for(ea, "dm:opened")["dm"]["id"] == dm_id
        assert wait_for(eb, "dm:opened")["dm"]["id"] == dm_id
        # No join-channel: both sockets are in the conversation's room already.
        ack = sa.call("send-message", {"channelId": dm_id, "content": f"@{b['name']} lunch?"}, timeout=5)
        assert ack["success"], ack
        root = ack["data"]["message"]
        assert root["mentions"] == [b["id"]], root
        assert wait_for(eb, "mention")["message"]["id"] == root["id"]
        reply = sb.call("send-message", {"channelId": dm_id, "content": "yes", "parentId": root["id"]},
                        timeout=5)
        assert reply["success"], reply
        updated = wait_for(ea, "thread-updated")
        assert updated == {"messageId": root["id"], "channelId": dm_id, "replyCount": 1,
                           "lastReplyAt": reply["data"]["message"]["createdAt"],
                           "participants": [b["id"]]}, updated
        status, reacted = api("PUT", f"/api/messages/{root['id']}/reactions/%3Atada%3A", a["token"])
        assert status == 200, reacted
        heard = wait_for(eb, "reaction-added")
        assert heard == {"messageId": root["id"], "channelId": dm_id, "emoji": ":tada:",
                         "userId": a["id"]}, heard
        status, thread = api("GET", f"/api/messages/{root['id']}/thread", b["token"])
        assert status == 200 and thread["data"]["root"]["replyCount"] == 1, thread
    finally:
        sa.disconnect()
        sb.disconnect()


def read_markers():
    a, b = signup("pye"), signup("pyf")
    status, created = api("POST", "/api/channels", a["token"], {"name": f"reads-{uuid.uuid4().hex[:12]}"})
    assert status == 201, created
    channel_id = created["data"]["channel"]["id"]
    status, _ = api("POST", f"/api/channels/{channel_id}/join", b["token"])
    assert status == 200
    _, first = api("POST", f"/api/channels/{channel_id}/messages", a["token"], {"content": "first"})
    _, second = api("POST", f"/api/channels/{channel_id}/messages", a["token"], {"content": "second"})
    phone, _ = client(b["token"], ["websocket"], "auth")
    laptop, laptop_events = client(b["token"], ["polling"], "auth")
    try:
        ack = phone.call("mark-read", {"channelId": channel_id, "messageId": first["data"]["message"]["id"]},
                         timeout=5)
        assert ack["success"], ack
        expected = {"channelId": channel_id, "isDm": False, "lastReadId": first["data"]["message"]["id"],
                    "unreadCount": 1, "mentionCount": 0}
        assert ack["data"] == expected, ack
        assert wait_for(laptop_events, "channel:read") == expected
        # Over REST this time: the sockets hear it all the same.
        status, read = api("POST", f"/api/channels/{channel_id}/read", b["token"], {})
        assert status == 200 and read["data"]["unreadCount"] == 0, read
        heard = wait_for(laptop_events, "channel:read")
        assert heard["lastReadId"] == second["data"]["message"]["id"], heard
    finally:
        phone.disconnect()
        laptop.disconnect()


def refused():
    sio = socketio.Client(reconnection=False)
    errors = []

    @sio.event
    def connect_error(data):
        errors.append(data)

    try:
        sio.connect(BASE, transports=["websocket"], auth={"token": "bad"}, wait_timeout=5)
    except socketio.exceptions.ConnectionError:
        assert errors and errors[0].get("message") == "INVALID_TOKEN", errors
        return
    raise AssertionError("a bad token connected")


def main():
    for transports in (["websocket"], ["polling"], ["polling", "websocket"]):
        for how in ("auth", "header", "cookie"):
            check(f"{'→'.join(transports)} with the token in the {how}", lambda t=transports, h=how: round_trip(t, h))
    check("a bad token is refused with INVALID_TOKEN", refused)
    check("a message with an attachment arrives in new-message, and the file downloads", attachment)
    check("a conversation: a DM, a mention, a thread reply with thread-updated, a reaction", conversation)
    check("read markers: marked read on one socket, channel:read on another", read_markers)
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
