"""Ademco Contact ID event codes (SIA DC-05) -> what each means for the duty room.

Every code of SIA DC-05-1999.09 Appendix C is here, plus the later codes Ademco/Honeywell
receivers document (``A`` in the source column): "Ademco Contact ID Reporting", revised
10/1/2012 (126, 129, 168/169, 314, 316, 345, 358, 435/436, 578/579, 9xx) and the derived-channel
and flash codes of alarmdecoder's ``LRR_CID_MAP`` (796, 798, 903, 904). Reference copies used to
build and check it (tests/conformance/contact_id/ keeps them with commit ids):

* DC-05 Appendix C: bla260/ad2usb ``ad2usb.indigoPlugin/Contents/Server Plugin/SAIC_EventCodes.py``
* later codes: nutechsoftware/alarmdecoder ``alarmdecoder/messages/lrr/events.py``

The kind is ours (the gateway has eight, see :mod:`drivers.alarm_codes`); the rules, in order:

* fire-group alarms are ``fire`` (111 is ``smoke``); gas (151) and carbon monoxide (162) are
  ``fire`` too: people must leave, so the fastest escalation and the egress doors -- a Chinese
  fire panel reports its combustible-gas detectors on the fire bit as well;
* panic, duress, hold-up, medical and personal emergency are ``panic``;
* intrusion, tamper alarms (137, 144, 145), exit error (374), forced access (423) are ``burglary``;
* equipment that stopped working -- expansion module failure (143), sensor supervision (147),
  polling loops (141/142), every 3xx trouble, failed service -- is ``fault``, never burglary;
* an off-normal condition to look at -- 2xx fire supervisory, environment (152-163, 168/169),
  a monitored person who failed to check in (102) or did not move (641, 654), a fire zone
  bypassed (571: the fire system is not running normally until it is unbypassed) -- is
  ``supervisory``;
* 150/160 (24-hour non-burglary, type not said) is ``other``: the panel did not say more.

Qualifier ``1`` raises (or opens), ``3`` restores (or closes), ``6`` reports a condition still
present (a repeat). Openings/closings, bypasses, access and remote-access records, event-log and
schedule news are logged; 602/603/608 are periodic tests (liveness). 601 and 607 raise ``test``
alarms, which close on acknowledgement. No gateway imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from drivers.alarm_codes import Kind, Meaning, unknown

#: qualifier texts of the code groups whose 1/3 mean something else than alarm/restore
_GROUP_TEXT = {
    "oc": {1: "opening", 3: "closing", 6: "status"},
    "bp": {1: "bypass", 3: "unbypass", 6: "still bypassed"},
    "ds": {1: "disabled", 3: "enabled", 6: "still disabled"},
    "se": {1: "start", 3: "end", 6: "status"},
}

# code kind how group source text -- how: alarm (raises on 1/6, restores on 3) | once (raises; an event no panel
# restores, so acknowledging closes it: a checksum or self-test failure, a report that could not be sent) | log | live
_TABLE = """
100 panic       alarm - D Medical
101 panic       alarm - D Personal emergency
102 supervisory alarm - D Fail to report in
110 fire        alarm - D Fire
111 smoke       alarm - D Smoke
112 fire        alarm - D Combustion
113 fire        alarm - D Water flow
114 fire        alarm - D Heat
115 fire        alarm - D Pull station
116 fire        alarm - D Duct
117 fire        alarm - D Flame
118 fire        alarm - D Near alarm (fire)
120 panic       alarm - D Panic
121 panic       alarm - D Duress
122 panic       alarm - D Silent panic
123 panic       alarm - D Audible panic
124 panic       alarm - D Duress, access granted
125 panic       alarm - D Duress, egress granted
126 panic       alarm - A Hold-up suspicion print
129 panic       alarm - A Hold-up verified
130 burglary    alarm - D Burglary
131 burglary    alarm - D Perimeter
132 burglary    alarm - D Interior
133 burglary    alarm - D 24 hour (safe)
134 burglary    alarm - D Entry/exit
135 burglary    alarm - D Day/night
136 burglary    alarm - D Outdoor
137 burglary    alarm - D Tamper
138 burglary    alarm - D Near alarm (burglary)
139 burglary    alarm - D Intrusion verifier
140 burglary    alarm - D General alarm
141 fault       alarm - D Polling loop open
142 fault       alarm - D Polling loop short
143 fault       alarm - D Expansion module failure
144 burglary    alarm - D Sensor tamper
145 burglary    alarm - D Expansion module tamper
146 burglary    alarm - D Silent burglary
147 fault       alarm - D Sensor supervision failure
150 other       alarm - D 24 hour non-burglary
151 fire        alarm - D Gas detected
152 supervisory alarm - D Refrigeration
153 supervisory alarm - D Loss of heat
154 supervisory alarm - D Water leakage
155 fault       alarm - D Foil break
156 fault       alarm - D Day trouble
157 supervisory alarm - D Low bottled gas level
158 supervisory alarm - D High temperature
159 supervisory alarm - D Low temperature
160 other       alarm - D 24 hour non-burglary
161 supervisory alarm - D Loss of air flow
162 fire        alarm - D Carbon monoxide detected
163 supervisory alarm - D Tank level
168 supervisory alarm - A High humidity
169 supervisory alarm - A Low humidity
200 supervisory alarm - D Fire supervisory
201 supervisory alarm - D Low water pressure
202 supervisory alarm - D Low CO2
203 supervisory alarm - D Gate valve sensor
204 supervisory alarm - D Low water level
205 supervisory alarm - D Pump activated
206 supervisory alarm - D Pump failure
210 supervisory alarm - D Fire supervisory
300 fault       alarm - D System trouble
301 fault       alarm - D AC loss
302 fault       alarm - D Low system battery
303 fault       once  - D RAM checksum bad
304 fault       once  - D ROM checksum bad
305 other       log   - D System reset
306 other       log   - D Panel programming changed
307 fault       once  - D Self-test failure
308 fault       alarm - D System shutdown
309 fault       once  - D Battery test failure
310 fault       alarm - D Ground fault
311 fault       alarm - D Battery missing/dead
312 fault       alarm - D Power supply overcurrent
313 other       log   - D Engineer reset
314 fault       alarm - A Primary power supply failure
316 fault       alarm - A System tamper
320 fault       alarm - D Sounder/relay trouble
321 fault       alarm - D Bell 1 trouble
322 fault       alarm - D Bell 2 trouble
323 fault       alarm - D Alarm relay trouble
324 fault       alarm - D Trouble relay trouble
325 fault       alarm - D Reversing relay trouble
326 fault       alarm - D Notification appliance circuit 3 trouble
327 fault       alarm - D Notification appliance circuit 4 trouble
330 fault       alarm - D System peripheral trouble
331 fault       alarm - D Polling loop open (trouble)
332 fault       alarm - D Polling loop short (trouble)
333 fault       alarm - D Expansion module failure (trouble)
334 fault       alarm - D Repeater failure
335 fault       alarm - D Local printer out of paper
336 fault       alarm - D Local printer failure
337 fault       alarm - D Expansion module DC loss
338 fault       alarm - D Expansion module low battery
339 fault       once  - D Expansion module reset
340 fault       alarm - D System peripheral trouble
341 fault       alarm - D Expansion module tamper (trouble)
342 fault       alarm - D Expansion module AC loss
343 fault       once  - D Expansion module self-test failure
344 fault       alarm - D RF receiver jam detected
345 fault       alarm - A AES encryption trouble
350 fault       alarm - D Communication trouble
351 fault       alarm - D Telco 1 fault
352 fault       alarm - D Telco 2 fault
353 fault       alarm - D Long range radio transmitter fault
354 fault       once  - D Failure to communicate event
355 fault       alarm - D Loss of radio supervision
356 fault       alarm - D Loss of central polling
357 fault       alarm - D Long range radio VSWR problem
358 fault       once  - A Periodic communication test failed
360 fault       alarm - D Communication trouble
370 fault       alarm - D Protection loop trouble
371 fault       alarm - D Protection loop open
372 fault       alarm - D Protection loop short
373 fault       alarm - D Fire trouble
374 burglary    alarm - D Exit error alarm (zone)
375 fault       alarm - D Panic zone trouble
376 fault       alarm - D Hold-up zone trouble
377 fault       alarm - D Swinger trouble
378 fault       alarm - D Cross-zone trouble
380 fault       alarm - D Sensor trouble
381 fault       alarm - D Loss of supervision, RF
382 fault       alarm - D Loss of supervision, RPM
383 fault       alarm - D Sensor tamper (trouble)
384 fault       alarm - D RF low battery
385 fault       alarm - D Smoke detector high sensitivity
386 fault       alarm - D Smoke detector low sensitivity
387 fault       alarm - D Intrusion detector high sensitivity
388 fault       alarm - D Intrusion detector low sensitivity
389 fault       once  - D Sensor self-test failure
391 fault       alarm - D Sensor watch trouble
392 fault       alarm - D Drift compensation error
393 fault       alarm - D Maintenance alert
400 other       log   oc D Open/close
401 other       log   oc D Open/close by user
402 other       log   oc D Group open/close
403 other       log   oc D Automatic open/close
404 other       log   oc D Late to open/close
405 other       log   oc D Deferred open/close
406 other       log   - D Cancel by user
407 other       log   oc D Remote arm/disarm
408 other       log   oc D Quick arm
409 other       log   oc D Keyswitch open/close
410 other       log   - D Remote access
411 other       log   - D Callback request made
412 other       log   - D Successful download/access
413 other       log   - D Unsuccessful access
414 other       log   - D System shutdown command received
415 other       log   - D Dialer shutdown command received
416 other       log   - D Successful upload
420 other       log   - D Access control
421 other       log   - D Access denied
422 other       log   - D Access report by user
423 burglary    alarm - D Forced access
424 other       log   - D Egress denied
425 other       log   - D Egress granted
426 supervisory alarm - D Access door propped open
427 fault       alarm - D Access point door status monitor trouble
428 fault       alarm - D Access point request-to-exit trouble
429 other       log   - D Access program mode entry
430 other       log   - D Access program mode exit
431 other       log   - D Access threat level change
432 fault       alarm - D Access relay/trigger failure
433 other       log   bp D Access request-to-exit shunt
434 other       log   bp D Access door status monitor shunt
435 other       log   - A Second person access
436 other       log   - A Irregular access
440 other       log   oc D Open/close
441 other       log   oc D Armed stay
442 other       log   oc D Keyswitch armed stay
450 other       log   oc D Exception open/close
451 other       log   oc D Early open/close
452 other       log   oc D Late open/close
453 other       log   - D Failed to open
454 other       log   - D Failed to close
455 other       log   - D Auto-arm failed
456 other       log   oc D Partial arm
457 other       log   - D Exit error (user)
458 other       log   - D User on premises
459 other       log   - D Recent close
461 other       log   - D Wrong code entry
462 other       log   - D Legal code entry
463 other       log   - D Re-arm after alarm
464 other       log   - D Auto-arm time extended
465 other       log   - D Panic alarm reset
466 other       log   - D Service on/off premises
500 other       log   ds D System disables
501 other       log   ds D Access reader disable
510 other       log   ds D System disables
520 other       log   ds D Sounder/relay disable
521 other       log   ds D Bell 1 disable
522 other       log   ds D Bell 2 disable
523 other       log   ds D Alarm relay disable
524 other       log   ds D Trouble relay disable
525 other       log   ds D Reversing relay disable
526 other       log   ds D Notification appliance circuit 3 disable
527 other       log   ds D Notification appliance circuit 4 disable
530 other       log   - D System peripheral disables
531 other       log   - D Module added
532 other       log   - D Module removed
540 other       log   - D System peripheral disables
550 other       log   ds D Communication disables
551 other       log   ds D Dialer disabled
552 other       log   ds D Radio transmitter disabled
553 other       log   ds D Remote upload/download disabled
560 other       log   ds D Communication disables
570 other       log   bp D Zone/sensor bypass
571 supervisory alarm bp D Fire bypass
572 other       log   bp D 24 hour zone bypass
573 other       log   bp D Burglary bypass
574 other       log   bp D Group bypass
575 other       log   bp D Swinger bypass
576 other       log   bp D Access zone shunt
577 other       log   bp D Access point bypass
578 other       log   bp A Vault bypass
579 other       log   bp A Vent zone bypass
600 test        log   - D Test/misc
601 test        alarm - D Manual trigger test report
602 test        live  - D Periodic test report
603 test        live  - D Periodic RF transmission
604 test        log   se D Fire test
605 test        log   - D Status report to follow
606 other       log   - D Listen-in to follow
607 test        alarm se D Walk test mode
608 test        live  - D Periodic test, system trouble present
609 other       log   - D Video transmitter active
610 test        log   - D Test/misc
611 test        log   - D Point tested OK
612 test        log   - D Point not tested
613 test        log   - D Intrusion zone walk tested
614 test        log   - D Fire zone walk tested
615 test        log   - D Panic zone walk tested
616 fault       alarm - D Service request
620 other       log   - D Event log
621 other       log   - D Event log reset
622 other       log   - D Event log 50% full
623 other       log   - D Event log 90% full
624 other       log   - D Event log overflow
625 other       log   - D Time/date reset
626 fault       alarm - D Time/date inaccurate
627 other       log   - D Program mode entry
628 other       log   - D Program mode exit
629 other       log   - D 32 hour event log marker
630 other       log   - D Schedule change
631 other       log   - D Exception schedule change
632 other       log   - D Access schedule change
640 other       log   - D Personnel monitoring
641 supervisory alarm - D Senior watch trouble
642 other       log   - D Latch-key supervision
650 other       log   - D Misc
651 other       log   - D Reserved (dealer identification)
652 other       log   - D Reserved for Ademco use
653 other       log   - D Reserved for Ademco use
654 supervisory alarm - D System inactivity
796 fault       alarm - A Unable to output signal (derived channel)
798 fault       alarm - A STU controller down (derived channel)
900 other       log   - A Download abort
901 other       log   se A Download start/end
902 other       log   - A Download interrupted
903 other       log   se A Device flash start/end
904 other       log   - A Device flash failed
910 other       log   oc A Auto-close with bypass
911 other       log   oc A Bypass closing
912 other       log   - A Fire alarm silenced
913 test        log   se A Supervisory point test start/end
914 test        log   se A Hold-up test start/end
915 test        log   se A Burglary test print start/end
916 test        log   se A Supervisory test print start/end
917 test        log   se A Burglary diagnostics start/end
918 test        log   se A Fire diagnostics start/end
919 test        log   - A Untyped diagnostics
920 other       log   - A Trouble closing
921 other       log   - A Access denied, code unknown
922 supervisory alarm - A Supervisory point alarm
923 other       log   bp A Supervisory point bypass
924 fault       alarm - A Supervisory point trouble
925 other       log   bp A Hold-up point bypass
926 fault       alarm - A AC failure for 4 hours
927 fault       alarm - A Output trouble
928 other       log   - A User code for event
929 other       log   - A Log-off
954 fault       alarm - A Central station connection failure
961 fault       alarm - A Receiver database connection failure
962 other       log   - A License expiration notice
999 other       log   - A Log event only (no report)
"""


@dataclass(frozen=True)
class CidCode:
    """One row of the table."""

    code: int
    kind: Kind
    how: str        # alarm | log | live
    group: str      # - | oc | bp | ds | se: what qualifiers 1/3 are called
    source: str     # D: SIA DC-05 Appendix C; A: later Ademco/Honeywell lists
    text: str


def _load(table: str) -> dict[int, CidCode]:
    out: dict[int, CidCode] = {}
    for line in table.strip().splitlines():
        code, kind, how, group, source, text = line.split(None, 5)
        out[int(code)] = CidCode(int(code), cast(Kind, kind), how, group, source, text)
    return out


_codes: dict[int, CidCode] | None = None


def codes() -> dict[int, CidCode]:
    """Every Contact ID event code the gateway knows: the rows are made the first time a code is asked about
    (an idle gateway, or one with no Contact ID panel, does not hold them: docs/hardening.md, "Idle memory")."""
    global _codes
    if _codes is None:
        _codes = _load(_TABLE)
    return _codes


def __getattr__(name: str) -> Any:
    """``CODES``: :func:`codes` (the table, loaded when first read)."""
    if name == "CODES":
        return codes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def describe(code: int, qualifier: int = 1) -> Meaning:
    """What ``qualifier`` + ``code`` means (qualifier 1 new/opening, 3 restore/closing, 6 still present)."""
    row = (_codes or codes()).get(code)
    if row is None:
        return unknown(f"{code:03d}", restore=qualifier == 3)
    text = row.text
    if row.group != "-":
        text = f"{text}: {_GROUP_TEXT[row.group].get(qualifier, str(qualifier))}"
    elif qualifier == 3:
        text = f"{text} (restore)"
    elif qualifier == 6:
        text = f"{text} (still present)"
    if row.how == "live":
        return Meaning(row.kind, text, "log", liveness=True)
    if row.how == "log":
        return Meaning(row.kind, text, "log")
    if qualifier == 3:
        return Meaning(row.kind, text, "restore", (row.kind,))
    return Meaning(row.kind, text, "raise", once=row.how == "once")
