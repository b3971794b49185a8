"""The only code that changes the user's files: quarantine, restore, delete, disable and enable packs.

`moves` is the one primitive that moves a file (never replacing, never leaving its folder), `journal` writes
every move down before and after it happens, `quarantine` and `packs` are the two kinds of move, and
`decisions` is the front door the API uses: one action at a time, and the keep list and actions log beside them.
"""
