"""The clock that services in separate processes share through a file."""

from datetime import UTC, datetime, timedelta

from shared.infra.clock import OffsetFileClock, SystemClock, clock_for


def test_the_offset_file_moves_the_clock_and_is_reread_when_it_changes(tmp_path):
    path = tmp_path / "offset"
    clock = OffsetFileClock(path)
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)  # no file: system time
    path.write_text(str(21 * 86400))
    assert clock.now() - datetime.now(UTC) > timedelta(days=20, hours=23)
    path.write_text("3600.5")
    assert timedelta(minutes=59) < clock.now() - datetime.now(UTC) < timedelta(minutes=61)


def test_without_an_offset_file_the_services_run_on_the_system_clock(tmp_path):
    assert isinstance(clock_for(None), SystemClock)
    assert isinstance(clock_for(tmp_path / "offset"), OffsetFileClock)
