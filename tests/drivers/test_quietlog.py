"""QuietLog: the first refusal at once, then one line per interval with the count; keys bounded."""

from __future__ import annotations

import logging

from drivers.quietlog import QuietLog


def test_first_logged_then_counted(caplog):
    now = [0.0]
    q = QuietLog(logging.getLogger("t.quiet"), interval_s=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "t.quiet"):
        assert q.log(("10.0.0.9", "plain"), "refused %s", "a")
        for _ in range(500):
            assert not q.log(("10.0.0.9", "plain"), "refused %s", "a")
        assert q.log(("10.0.0.8", "plain"), "refused %s", "b")     # another source: its own line
        now[0] = 61
        assert q.log(("10.0.0.9", "plain"), "refused %s", "a")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["refused a", "refused b", "refused a (and 500 more like it in the last 60 s)"]
    assert q.total == 503


def test_keys_are_bounded():
    q = QuietLog(logging.getLogger("t.quiet2"), max_keys=10)
    for i in range(10_000):
        q.log(i, "x")
    assert len(q._seen) == 10
