"""Fill a box with history before the server starts (the replay scenario's 100k changes): one
chat message per change, written through the store's own functions in large transactions."""

from __future__ import annotations

from storage import Database
from storage.nms import create_object, folder_at, open_box

STORE, BOX = "bench", "tel:+15550100"


def seed(database_url: str, count: int, *, per_transaction: int = 10_000) -> None:
    database = Database(database_url)
    database.migrate()
    made = 0
    while made < count:
        batch = min(per_transaction, count - made)

        def job(session, first=made, batch=batch):  # type: ignore[no-untyped-def]
            work = open_box(session, STORE, BOX)
            assert work is not None
            folder = folder_at(work, "/conversations/bench", create=True)
            for n in range(first, first + batch):
                create_object(work, folder, [
                    {"name": "From", "value": ["tel:+15550100"]},
                    {"name": "To", "value": ["tel:+15550101"]},
                    {"name": "TextContent", "value": [f"history {n}"]}], [])

        database.run(job)
        made += batch
    database.dispose()
