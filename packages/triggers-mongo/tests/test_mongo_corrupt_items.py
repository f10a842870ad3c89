"""An item whose record is not JSON text is a CorruptSessionError naming the session and item.

Found by the reliability suite: such a record used to surface as a generic
StorageError carrying the JSON decoder's message (or a TypeError's, for a
record that is a sub-document), without saying which item was damaged.
"""

from __future__ import annotations

from typing import Any

import pytest

from triggers.errors import CorruptSessionError
from triggers_mongo import MongoStorageBackend
from triggers_mongo.layout import collection_names


@pytest.mark.parametrize("damage", ["not json {", {"format": 2}])
def test_a_record_that_is_not_json_text_is_a_corrupt_session(
    mongo_options: dict[str, Any], damage: object
) -> None:
    storage = MongoStorageBackend("victim", **mongo_options)
    with storage.acquire_lock():
        storage.update_configuration({"t_a": {"after": ["x"], "run": "json.dumps"}})
        storage.create_instance("t_a")
        storage.save()
    items = storage.client[mongo_options["database"]][collection_names(mongo_options["collection"]).items]
    assert items.update_many({"kind": "instance"}, {"$set": {"record": damage}}).modified_count == 1
    with pytest.raises(CorruptSessionError, match="session 'victim': the stored instance 't_a#0'"):
        _ = MongoStorageBackend("victim", **mongo_options).metadata
    assert [item["record"] for item in items.find({"kind": "instance"})] == [damage]
