"""Ids: the default factory's ids are unique, UUIDv7-shaped and sort by the time they were made."""

from __future__ import annotations

import time
import uuid

from prepaid_wallet.ids import RandomIds, SequentialIds


def test_random_ids_are_uuid7_hex_with_the_prefix() -> None:
    made = RandomIds().new("e")
    assert made.startswith("e_")
    value = uuid.UUID(made[2:])
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert abs((value.int >> 80) - time.time_ns() // 1_000_000) < 60_000


def test_random_ids_are_unique_and_sort_by_the_millisecond_they_were_made_in() -> None:
    ids = RandomIds()
    first = [ids.new("w") for _ in range(2000)]
    time.sleep(0.002)
    later = [ids.new("w") for _ in range(50)]
    assert len(set(first + later)) == len(first) + len(later)
    assert max(first) < min(later)
    millis = [int(i[2:14], 16) for i in first]
    assert millis == sorted(millis)


def test_sequential_ids_number_each_prefix() -> None:
    ids = SequentialIds()
    assert [ids.new("w"), ids.new("w"), ids.new("e")] == ["w_000001", "w_000002", "e_000001"]


def test_ids_drawn_by_work_that_wrote_nothing_are_handed_out_again_first() -> None:
    from prepaid_wallet.app.environment import Ids

    ids = Ids(SequentialIds())
    assert ids.new("e") == "e_000001"
    with ids.recording() as drawn:
        first = [ids.new("e"), ids.new("lot"), ids.new("e")]
    assert drawn == [("e", "e_000002"), ("lot", "lot_000001"), ("e", "e_000003")]
    ids.give_back(drawn)
    assert [ids.new("e"), ids.new("lot"), ids.new("e")] == first  # run again: the same ids
    assert ids.new("e") == "e_000004"  # then the factory's


def test_recording_is_per_thread_and_a_thread_that_never_recorded_records_nothing() -> None:
    import threading

    from prepaid_wallet.app.environment import Ids

    ids = Ids(SequentialIds())
    seen: list[object] = []

    def other() -> None:  # never recorded in this thread: it draws, records nothing
        seen.append(ids.new("x"))
        with ids.recording() as mine:
            ids.new("x")
        seen.append(mine)

    with ids.recording() as drawn:
        ids.new("e")
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        ids.new("e")
    assert drawn == [("e", "e_000001"), ("e", "e_000002")]  # not the other thread's
    assert seen == ["x_000001", [("x", "x_000002")]]
