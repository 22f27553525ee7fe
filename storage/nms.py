"""The message store's unit of work (NMS §5.1.4.2, §5.1.4.4), run inside one transaction.

Every tracked change takes the box's next mod-sequence in the same transaction as the change;
that number is the item's ``lastModSeq``. A change that changes nothing takes none. Deleted
items stay as tombstones, so "everything after sequence N" is a query on current state
(the spec's implementation note, §5.1.4.3.1) and needs no per-client storage.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .models import Box, Folder, StoredObject


@dataclass(frozen=True)
class ItemState:
    """An object or folder as a change notification reports it (its state after the change)."""

    kind: str  # "object" or "folder"
    id: str
    last_mod_seq: int
    deleted: bool = False
    parent_id: str | None = None
    flags: tuple[str, ...] = ()
    name: str | None = None
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    created_seq: int = 0


@dataclass(frozen=True)
class Position:
    """A point in a box's stream of changes; ``str()`` is the restartToken."""

    validity: int
    seq: int

    def __str__(self) -> str:
        return f"{self.validity}-{self.seq}"

    @classmethod
    def parse(cls, token: str) -> Position:
        """Raises ValueError for anything this server did not hand out."""
        validity, _, seq = token.partition("-")
        if not (validity.isdigit() and seq.isdigit()) or len(token) > 40:
            raise ValueError(f"not a restartToken: {token!r}")
        return cls(int(validity), int(seq))


@dataclass(frozen=True)
class Committed:
    """What one transaction changed in one box, in sequence order."""

    store: str
    box: str
    box_pk: int
    changes: tuple[ItemState, ...]
    position: Position


@dataclass
class BoxWork:
    """The box a unit of work acts on, and the changes it records."""

    session: Session
    box: Box
    changes: list[ItemState] = field(default_factory=list)
    #: folders found by path in this transaction (writes batched together share it); any
    #: rename, delete or reset forgets them all
    folders: dict[str, Folder] = field(default_factory=dict)
    #: and the paths of folders, by id (the session's identity map holds folders weakly)
    paths: dict[str, str] = field(default_factory=dict)

    def forget_folders(self) -> None:
        self.folders.clear()
        self.paths.clear()

    def next_seq(self) -> int:
        self.box.seq += 1
        return self.box.seq

    def committed(self) -> Committed:
        return Committed(self.box.store_name, self.box.box_id, self.box.pk,
                         tuple(self.changes), Position(self.box.validity, self.box.seq))


class NotFound(LookupError):
    """No such (live) object or folder in this box."""


def open_box(session: Session, store: str, box_id: str, *, create: bool = True) -> BoxWork | None:
    """The box, created on first use (and locked for this transaction on PostgreSQL)."""
    query = sa.select(Box).where(Box.store_name == store, Box.box_id == box_id)
    box = session.scalar(query.with_for_update())
    if box is None:
        if not create:
            return None
        # two first writers of a new box may race (threads here, processes on PostgreSQL):
        # insert-if-absent, then read whichever row won
        insert = (postgresql.insert if session.get_bind().dialect.name == "postgresql"
                  else sqlite.insert)(Box)
        session.execute(insert.values(store_name=store, box_id=box_id, seq=0, validity=1)
                        .on_conflict_do_nothing(index_elements=["store_name", "box_id"]))
        box = session.scalar(query.with_for_update())
        assert box is not None
    return BoxWork(session, box)


def position(session: Session, store: str, box_id: str) -> Position:
    box = session.scalar(sa.select(Box).where(Box.store_name == store, Box.box_id == box_id))
    return Position(1, 0) if box is None else Position(box.validity, box.seq)


# -- folders -------------------------------------------------------------------------------
def folder_state(folder: Folder) -> ItemState:
    return _folder_item(folder.id, folder.last_mod_seq, folder.deleted, folder.parent_id,
                        folder.name)


def _folder_item(id_: str, last_mod_seq: int, deleted: bool, parent_id: str | None,
                 name: str) -> ItemState:
    """(in the order of the columns replay reads)"""
    return ItemState("folder", id_, last_mod_seq, deleted, parent_id=parent_id, name=name)


def root_folder(work: BoxWork) -> Folder:
    root = work.session.scalar(sa.select(Folder).where(
        Folder.box_pk == work.box.pk, Folder.parent_id.is_(None), Folder.deleted.is_(False)))
    if root is None:
        root = _new_folder(work, None, "")
    return root


def _new_folder(work: BoxWork, parent_id: str | None, name: str) -> Folder:
    folder = Folder(id=_new_id("f"), box_pk=work.box.pk, parent_id=parent_id, name=name,
                    last_mod_seq=work.next_seq(), deleted=False)
    work.session.add(folder)
    work.changes.append(folder_state(folder))
    return folder


def folder_at(work: BoxWork, path: str, *, create: bool) -> Folder:
    """The folder at ``/a/b`` under the root, creating the missing ones when ``create``."""
    if not path.startswith("/") or "//" in path or len(path) > 1024:
        raise ValueError("a parentFolderPath starts with '/' and has no empty names")
    known = work.folders.get(path)
    if known is not None and not known.deleted:
        return known
    folder = root_folder(work)
    for name in [part for part in path.split("/") if part]:
        child = work.session.scalar(sa.select(Folder).where(
            Folder.box_pk == work.box.pk, Folder.parent_id == folder.id, Folder.name == name,
            Folder.deleted.is_(False)))
        if child is None:
            if not create:
                raise NotFound(path)
            child = _new_folder(work, folder.id, name)
        folder = child
    work.folders[path] = folder
    return folder


def live_folder(work: BoxWork, folder_id: str) -> Folder:
    folder = work.session.get(Folder, folder_id)
    if folder is None or folder.box_pk != work.box.pk or folder.deleted:
        raise NotFound(folder_id)
    return folder


def rename_folder(work: BoxWork, folder_id: str, name: str) -> Folder:
    """A new folderName is a change of that folder only (§5.1.4.2); the same name is none."""
    folder = live_folder(work, folder_id)
    if folder.parent_id is None:
        raise PermissionError("the root folder has no name to change")
    if not name or "/" in name or len(name) > 255:
        raise ValueError("a folder name is 1 to 255 characters without '/'")
    if name != folder.name:
        clash = work.session.scalar(sa.select(Folder.id).where(
            Folder.parent_id == folder.parent_id, Folder.name == name,
            Folder.deleted.is_(False)))
        if clash is not None:
            raise FileExistsError(name)
        folder.name = name
        work.forget_folders()
        folder.last_mod_seq = work.next_seq()
        work.changes.append(folder_state(folder))
    return folder


def delete_folder(work: BoxWork, folder_id: str) -> None:
    """Delete a folder with everything in it: each item deleted is a change of its own."""
    folder = live_folder(work, folder_id)
    if folder.parent_id is None:
        raise PermissionError("the root folder cannot be deleted")
    work.forget_folders()
    _delete_tree(work, folder)


def _delete_tree(work: BoxWork, folder: Folder) -> None:
    folders, objects = folder_children(work.session, folder)
    for obj in objects:
        delete_object(work, obj.id)
    for child in folders:
        _delete_tree(work, child)
    folder.deleted = True
    folder.last_mod_seq = work.next_seq()
    work.changes.append(folder_state(folder))


def folder_path(session: Session, folder: Folder) -> str:
    names: list[str] = []
    current: Folder | None = folder
    while current is not None and current.parent_id is not None:
        names.append(current.name)
        current = session.get(Folder, current.parent_id)
    return "/" + "/".join(reversed(names))


def folder_children(session: Session, folder: Folder) -> tuple[list[Folder], list[StoredObject]]:
    folders = list(session.scalars(sa.select(Folder).where(
        Folder.parent_id == folder.id, Folder.deleted.is_(False)).order_by(Folder.last_mod_seq)))
    objects = list(session.scalars(sa.select(StoredObject).where(
        StoredObject.folder_id == folder.id, StoredObject.deleted.is_(False))
        .order_by(StoredObject.created_seq)))
    return folders, objects


# -- objects -------------------------------------------------------------------------------
def object_state(obj: StoredObject) -> ItemState:
    return _object_item(obj.id, obj.last_mod_seq, obj.deleted, obj.folder_id, obj.flags,
                        obj.created_seq, obj.attributes)


def _object_item(id_: str, last_mod_seq: int, deleted: bool, folder_id: str, flags: list[str],
                 created_seq: int, attributes: list[dict[str, Any]] | None = None) -> ItemState:
    """(in the order of the columns replay reads; ``None``: attributes not read)"""
    return ItemState("object", id_, last_mod_seq, deleted, parent_id=folder_id,
                     flags=tuple(flags),
                     attributes=() if attributes is None
                     else tuple((a["name"], tuple(a["value"])) for a in attributes),
                     created_seq=created_seq)


def create_object(work: BoxWork, folder: Folder, attributes: list[dict[str, Any]],
                  flags: list[str]) -> StoredObject:
    seq = work.next_seq()
    obj = StoredObject(id=_new_id("o"), box_pk=work.box.pk, folder_id=folder.id,
                       attributes=attributes, flags=_unique(flags), created_seq=seq,
                       last_mod_seq=seq, deleted=False)
    work.session.add(obj)
    work.changes.append(object_state(obj))
    return obj


def object_path(work: BoxWork, obj: StoredObject) -> str:
    """``/a/b/<objectId>``: the folder path, then the object's id."""
    path = work.paths.get(obj.folder_id)
    if path is None:
        path = work.paths[obj.folder_id] = folder_path(work.session,
                                                       live_folder(work, obj.folder_id))
    return path.rstrip("/") + "/" + obj.id


def live_object(work: BoxWork, object_id: str) -> StoredObject:
    obj = work.session.get(StoredObject, object_id)
    if obj is None or obj.box_pk != work.box.pk or obj.deleted:
        raise NotFound(object_id)
    return obj


def delete_object(work: BoxWork, object_id: str) -> None:
    obj = live_object(work, object_id)
    obj.deleted = True
    obj.last_mod_seq = work.next_seq()
    work.changes.append(object_state(obj))


def set_flags(work: BoxWork, object_id: str, flags: list[str]) -> StoredObject:
    """Replace the object's flags; the same set again is no change (no new lastModSeq)."""
    obj = live_object(work, object_id)
    wanted = _unique(flags)
    if set(wanted) != set(obj.flags):
        obj.flags = wanted
        obj.last_mod_seq = work.next_seq()
        work.changes.append(object_state(obj))
    return obj


# -- box reset (§5.1.4.2.1) ---------------------------------------------------------------
RESET = ItemState("reset", "", 0)


def reset_box(work: BoxWork) -> None:
    """Empty the box and start a new validity: tokens from before now yield ``resetBox``."""
    work.session.execute(sa.delete(StoredObject).where(StoredObject.box_pk == work.box.pk))
    work.session.execute(sa.delete(Folder).where(Folder.box_pk == work.box.pk))
    work.box.validity += 1
    work.box.seq = 0
    work.forget_folders()
    work.changes.append(RESET)


# -- replay --------------------------------------------------------------------------------
def changes_between(session: Session, box_pk: int, after: int, upto: int,
                    limit: int, *, attributes: bool = True) -> list[ItemState]:
    """Current state of every object and folder last changed in (after, upto], oldest first.

    Read as plain rows (no ORM objects): a replay reads this for every change in the box.
    ``attributes=False`` leaves the objects' attributes out (only a filter looks at them)."""
    o = sa.inspect(StoredObject).local_table
    f = sa.inspect(Folder).local_table
    columns = [o.c.id, o.c.last_mod_seq, o.c.deleted, o.c.folder_id, o.c.flags, o.c.created_seq]
    if attributes:
        columns.append(o.c.attributes)
    objects = session.execute(sa.select(*columns).where(
        o.c.box_pk == box_pk, o.c.last_mod_seq > after, o.c.last_mod_seq <= upto)
        .order_by(o.c.last_mod_seq).limit(limit)).all()
    folders = session.execute(sa.select(f.c.id, f.c.last_mod_seq, f.c.deleted, f.c.parent_id,
                                        f.c.name).where(
        f.c.box_pk == box_pk, f.c.last_mod_seq > after, f.c.last_mod_seq <= upto)
        .order_by(f.c.last_mod_seq).limit(limit)).all()
    states = [_object_item(*row) for row in objects]
    if folders:
        states += [_folder_item(*row) for row in folders]
        states.sort(key=lambda state: state.last_mod_seq)
    return states[:limit]


def _unique(flags: list[str]) -> list[str]:
    return list(dict.fromkeys(flags))


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(8)
