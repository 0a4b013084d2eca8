"""ContactDirectory: name → chat resolution (exact, ambiguous, near misses, File Transfer), the
merge rules of upsert, and the wire → Contact boundary."""

from __future__ import annotations

import pytest

from wxcli.contacts import (
    FILEHELPER_NAMES,
    ContactDirectory,
    contact_from_json,
    contact_to_json,
    describe,
    is_filehelper_name,
)
from wxcli.errors import AmbiguousRecipientError, RecipientError, RecipientNotFoundError
from wxcli.protocol.models import Contact, Member


def directory() -> ContactDirectory:
    return ContactDirectory(
        [
            Contact("@me", "云帆客服中心", sex=1),
            Contact("@zhang", "张三", remark="老张", contact_flag=3, sex=1),
            Contact("@li", "李四", remark="李四", contact_flag=3),  # remark == nickname
            Contact("@@g1", "客服1群", member_count=3, members=(Member("@zhang", "张三"),)),
            Contact("@@g2", "客服2群", member_count=5),
            Contact("@@dup1", "售后群", member_count=10),
            Contact("@@dup2", "售后群", member_count=20),
            Contact("@wang", "王五", remark="客服1群"),  # a friend whose remark is a group name
            Contact("@mp", "云帆科技", verify_flag=24),
            Contact("filehelper", "文件传输助手"),
            Contact("weixin", "微信团队", verify_flag=56),
        ]
    )


@pytest.mark.parametrize(
    ("name", "user"),
    [
        ("老张", "@zhang"),
        ("张三", "@zhang"),
        ("李四", "@li"),
        ("客服2群", "@@g2"),
        ("@@g2", "@@g2"),
    ],
)
def test_resolve_exact_names(name, user):
    assert directory().resolve(name).user_name == user


def test_same_name_twice_is_ambiguous_never_the_first():
    with pytest.raises(AmbiguousRecipientError) as info:
        directory().resolve("售后群")
    err = info.value
    assert len(err.matches) == 2
    assert "@@dup1" in err.matches[0]
    assert "@@dup2" in err.matches[1]
    assert "'售后群' matches 2 chats" in str(err)
    assert "--to-id" in str(err)
    assert err.exit_code == 1


def test_a_group_and_a_friends_remark_with_the_same_name_are_ambiguous():
    with pytest.raises(AmbiguousRecipientError) as info:
        directory().resolve("客服1群")
    kinds = sorted(m.split("[", 1)[1].split(",", 1)[0].split(" ")[0] for m in info.value.matches)
    assert kinds == ["friend", "group"]
    assert any("(nickname 王五)" in m for m in info.value.matches)


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("客服3群", "客服2群"),  # a typo
        ("客服", "客服1群"),  # part of a longer name
        ("张", "张三"),
    ],
)
def test_unknown_names_suggest_near_matches(name, suggested):
    with pytest.raises(RecipientNotFoundError) as info:
        directory().resolve(name)
    err = info.value
    assert suggested in err.near
    assert len(err.near) <= 5
    assert f"no group or contact is named {name!r}; did you mean: " in str(err)
    assert isinstance(err, RecipientError)


def test_nothing_near_gives_no_suggestions():
    with pytest.raises(RecipientNotFoundError) as info:
        directory().resolve("zzzzzz")
    assert info.value.near == []
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize("name", [*sorted(FILEHELPER_NAMES), "FILE TRANSFER", " 文件传输助手 "])
def test_file_transfer_names(name):
    assert is_filehelper_name(name)
    assert directory().resolve(name).user_name == "filehelper"
    # even before the directory knows it (e.g. a fresh, empty one)
    assert ContactDirectory().resolve(name).user_name == "filehelper"


def test_kinds():
    d = directory()
    assert {c.user_name: c.kind for c in d} == {
        "@me": "friend",
        "@zhang": "friend",
        "@li": "friend",
        "@@g1": "group",
        "@@g2": "group",
        "@@dup1": "group",
        "@@dup2": "group",
        "@wang": "friend",
        "@mp": "official",
        "filehelper": "special",
        "weixin": "special",
    }
    assert len(d.groups()) == 4
    assert d.member("@@g1", "@zhang").nickname == "张三"
    assert d.member("@@g1", "@nobody") is None
    assert d.member("@@none", "@zhang") is None


def test_upsert_keeps_what_a_thinner_update_lacks():
    d = ContactDirectory(
        [
            Contact(
                "@@g",
                "群",
                remark="备注",
                encry_chat_room_id="@enc",
                members=(Member("@a", "阿"), Member("@b", "贝", "贝总")),
            )
        ]
    )
    # a rename from webwxsync: no members, no EncryChatRoomId
    d.upsert(Contact("@@g", "新群名"))
    g = d.get("@@g")
    assert g.nickname == "新群名"
    assert g.remark == "备注"
    assert g.encry_chat_room_id == "@enc"
    assert [m.user_name for m in g.members] == ["@a", "@b"]
    # stub members from webwxinit (empty names) don't replace real ones either
    d.upsert(Contact("@@g", "新群名", members=(Member("@a", ""),)))
    assert len(d.get("@@g").members) == 2
    # a member learned later keeps their group alias when the update lacks one
    d.add_member("@@g", Member("@b", "贝贝"))
    assert d.member("@@g", "@b").shown_name == "贝总"
    d.add_member("@@nope", Member("@x", "x"))  # unknown group: ignored
    assert d.remove("@@g") is not None
    assert "@@g" not in d


def test_json_round_trip():
    d = directory()
    again = ContactDirectory.from_json(d.to_json())
    assert [contact_to_json(c) for c in again] == d.to_json()
    c = Contact("@x", "x", star=True, is_owner=True, members=(Member("@y", "y", "Y"),))
    assert contact_from_json(contact_to_json(c)) == c


def test_describe_names_the_chat_unambiguously():
    assert describe(Contact("@zhang0123456789abcdef", "张三", remark="老张")) == (
        "老张 (nickname 张三) [friend, id @zhang01234567…]"
    )
    assert describe(Contact("@@g1", "客服1群", member_count=3)).startswith(
        "客服1群 [group, 3 members"
    )


def test_contact_from_wire_decodes_names_and_flags():
    wire = {
        "UserName": "@@abc",
        "NickName": '客服<span class="emoji emoji1f600"></span>群',
        "RemarkName": "",
        "MemberCount": 2,
        "MemberList": [
            {"UserName": "@m1", "NickName": "甲", "DisplayName": "甲经理", "AttrStatus": 5},
            {"UserName": "@m2", "NickName": "乙", "DisplayName": ""},
        ],
        "EncryChatRoomId": "@enc",
        "ContactFlag": "3",
        "VerifyFlag": None,
        "IsOwner": 1,
        "StarFriend": 0,
    }
    c = Contact.from_wire(wire)
    assert c.nickname == "客服😀群"
    assert c.is_group
    assert c.kind == "group"
    assert c.members_known
    assert c.contact_flag == 3
    assert c.verify_flag == 0
    assert c.is_owner
    assert [m.shown_name for m in c.members] == ["甲经理", "乙"]
    assert c.members[0].attr_status == 5
