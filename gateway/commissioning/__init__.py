"""The commissioning walk: technicians prove, device by device, that a site works before it is handed over.

Why it is built this way:

* **Proof, not ticks.** Every step of a walk (a door's test card and relay, its contact, a refused card,
  the held-open alarm; a reader online and secure; a meter's reading and valve read-back; an alarm zone's
  signal and restore) is something the gateway already records as an event. The tracker checks the steps
  from that event flow as they happen; a person can only mark a step not applicable or failed, with a
  reason, never done.
* **What is left, live.** Each open run is in memory and in the register; the page polls it per building.
* **A report that stays.** Finishing freezes the run, stores the printed report (zh and en) and sends
  ``site.commissioned`` to central in the same transaction.
"""

from gateway.commissioning.component import CommissioningComponent

__all__ = ["CommissioningComponent"]
