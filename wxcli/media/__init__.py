"""Media that arrive in chats: downloading them while the session lives, and storing them
content-addressed in Aliyun OSS or a local folder (``wxcli.media.storage``)."""
