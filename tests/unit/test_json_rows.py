"""A batch's rows as one JSON text (eventcore.db.json_rows), as json_to_recordset reads them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from asyncpg.pgproto.pgproto import UUID as AsyncpgUUID

from eventcore.db import json_rows


def test_rows_keep_their_values_as_postgresql_reads_them_back() -> None:
    ours, read = uuid4(), AsyncpgUUID(str(uuid4()))  # a UUID as asyncpg reads it from a row
    when = datetime(2026, 11, 27, 4, 30, 1, 123456, tzinfo=UTC)
    text = json_rows([{"id": ours, "read": read, "at": when, "on": date(2026, 1, 2),
                       "words": 'a "b" \\ c\n🌱', "ids": (ours, read), "none": None}])
    assert json.loads(text) == [{"id": str(ours), "read": str(read),
                                 "at": "2026-11-27T04:30:01.123456+00:00", "on": "2026-01-02",
                                 "words": 'a "b" \\ c\n🌱', "ids": [str(ours), str(read)],
                                 "none": None}]


def test_a_value_it_cannot_write_is_refused_naming_its_type_not_the_value() -> None:
    with pytest.raises(TypeError, match="Decimal") as caught:
        json_rows([{"amount": Decimal("12.5")}])
    assert "12.5" not in str(caught.value)
