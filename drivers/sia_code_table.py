"""The SIA two-letter event codes (SIA DC-03) and what each means here: data only.

Columns: ``code kinds how source text``.

* ``how``: ``alarm`` raises ``kinds``; ``once`` raises too, for an event no panel ever restores (data lost,
  a checksum failure): acknowledging closes it; ``restore`` ends the open alarms of every kind in
  ``kinds`` (``+``-separated); ``log`` is news only; ``live`` is a periodic test (log, liveness).
* ``source``: ``S`` -- SIA DC-03 as listed in pysiaalarm's ``docs/codes.csv``; ``P`` -- listed only
  in pysiaalarm's ``src/pysiaalarm/data/sia_codes.py`` (later DC-03 codes and panel makers'
  additions, e.g. Ajax's photo-on-demand and night-mode codes). Both files, at the commit in
  tests/conformance/sia_codes/PROVENANCE.md, are the reference the tests check every code against.
  ``L_`` (listen-in followed by seconds) in codes.csv is a pattern, not a code, and is left out.

The letters follow DC-03: the first names the subject (F fire, B burglary, P panic, H hold-up,
M medical, Q emergency, G gas, K heat, S sprinkler, W water, Z freeze, T tamper, U untyped...),
the second the condition (A alarm, H alarm restore, T trouble, J trouble restore, R restoral of
alarm *and* trouble, S supervisory, B/U bypass/unbypass, X test). The kind per subject is ours,
with the same rules as the Contact ID table (:mod:`drivers.cid_codes`): G gas and K heat and
S sprinkler flow are ``fire``; W water and Z freeze are ``supervisory``; H/M/Q are ``panic``;
T tamper is ``burglary``; U untyped is ``other``; troubles are ``fault``; bypassing a fire
point (FB, KB, SB) is a ``supervisory`` alarm until unbypassed.
"""

from __future__ import annotations

TABLE = """
AA burglary  alarm   P Alarm, panel substitution
AB other     log     P Abort
AF other     log     P Arming event (scenario)
AN fault     restore S Analog restoral
AR fault     restore S AC restoral
AS fault     alarm   S Analog service
AT fault     alarm   S AC trouble
BA burglary  alarm   S Burglary alarm
BB other     log     S Burglary bypass
BC other     log     S Burglary cancel
BD fault     alarm   S Swinger trouble
BE fault     restore S Swinger trouble restore
BG burglary  alarm   P Unverified event, burglary
BH burglary  restore S Burglary alarm restore
BJ fault     restore S Burglary trouble restore
BM burglary  alarm   S Burglary alarm, cross point
BR burglary+fault+supervisory restore S Burglary restoral
BS supervisory alarm S Burglary supervisory
BT fault     alarm   S Burglary trouble
BU other     log     S Burglary unbypass
BV burglary  alarm   S Burglary verified
BX test      log     S Burglary test
BZ fault     alarm   S Missing supervision
CA other     log     S Automatic closing
CB other     log     P Arming event (disarmed automatically)
CC other     log     P Arming event (arming failed)
CD other     log     S Closing delinquent
CE other     log     S Closing extend
CF other     log     S Forced closing
CG other     log     S Close area
CI other     log     S Fail to close
CJ other     log     S Late close
CK other     log     S Early close
CL other     log     S Closing report
CM burglary  alarm   S Missing alarm, recent closing
CO other     log     P Command sent
CP other     log     S Automatic closing
CQ other     log     P Remote closing
CR other     log     S Recent closing
CS other     log     S Closing keyswitch
CT other     log     S Late to open
CW other     log     S Was force armed
CX other     log     P Custom function executed
CZ other     log     S Point closing
DA other     log     S Card assigned
DB other     log     S Card deleted
DC other     log     S Access closed
DD other     log     S Access denied
DE other     log     S Request to enter
DF burglary  alarm   S Door forced
DG other     log     S Access granted
DH supervisory+burglary restore S Door left open, restoral
DI other     log     P Access denied, passback
DJ burglary  alarm   S Door forced, trouble
DK other     log     S Access lockout
DL burglary  alarm   S Door left open, alarm
DM supervisory alarm S Door left open, trouble
DN other     log     S Door left open (non-alarm, non-trouble)
DO other     log     S Access open
DP other     log     S Access denied, unauthorized time
DQ other     log     S Access denied, unauthorized arming state
DR burglary+supervisory+fault restore S Door restoral
DS other     log     S Door station
DT fault     alarm   S Access trouble
DU other     log     S Dealer ID
DV other     log     S Access denied, unauthorized entry level
DW other     log     S Access denied, interlock
DX other     log     S Request to exit
DY other     log     S Door locked
DZ other     log     S Access denied, door secured
EA burglary  alarm   S Exit alarm
EE other     log     S Exit error
EJ burglary  restore P Expansion tamper restore
EM fault     alarm   P Expansion device missing
EN fault     restore P Expansion missing restore
ER fault     restore S Expansion restoral
ES burglary  alarm   P Expansion device tamper
ET fault     alarm   S Expansion trouble
EX other     alarm   S External device condition
EZ burglary  alarm   S Missing alarm, exit error
FA fire      alarm   S Fire alarm
FB supervisory alarm S Fire bypass
FC other     log     S Fire cancel
FG fire      alarm   P Unverified event, fire
FH fire      restore S Fire alarm restore
FI test      log     S Fire test begin
FJ fault     restore S Fire trouble restore
FK test      log     S Fire test end
FL other     log     P Fire alarm silenced
FM fire      alarm   S Fire alarm, cross point
FQ fault     restore P Fire supervisory trouble restore
FR fire+fault+supervisory restore S Fire restoral
FS supervisory alarm S Fire supervisory
FT fault     alarm   S Fire trouble
FU supervisory restore S Fire unbypass
FV supervisory restore P Fire supervision restore
FW fault     alarm   P Fire supervisory trouble
FX test      log     S Fire test
FY fault     alarm   S Missing fire trouble
FZ fault     alarm   S Missing fire supervision
GA fire      alarm   S Gas alarm
GB other     log     S Gas bypass
GH fire      restore S Gas alarm restore
GJ fault     restore S Gas trouble restore
GR fire+fault+supervisory restore S Gas restoral
GS supervisory alarm S Gas supervisory
GT fault     alarm   S Gas trouble
GU other     log     S Gas unbypass
GX test      log     S Gas test
HA panic     alarm   S Hold-up alarm
HB other     log     S Hold-up bypass
HH panic     restore S Hold-up alarm restore
HJ fault     restore S Hold-up trouble restore
HR panic+fault+supervisory restore S Hold-up restoral
HS supervisory alarm S Hold-up supervisory
HT fault     alarm   S Hold-up trouble
HU other     log     S Hold-up unbypass
IA fault     alarm   S Equipment failure condition
IR fault     restore S Equipment failure restoral
JA burglary  alarm   S User code tamper
JC burglary  restore P User code tamper cancelled
JD other     log     S Date changed
JH other     log     S Holiday changed
JK other     log     S Latchkey alert
JL other     log     S Log threshold
JO other     log     S Log overflow
JP other     log     S User on premises
JR other     log     S Schedule executed
JS other     log     S Schedule changed
JT other     log     S Time changed
JV other     log     S User code changed
JX other     log     S User code deleted
JY other     log     S User code added
JZ other     log     S User level set
KA fire      alarm   S Heat alarm
KB supervisory alarm S Heat bypass
KH fire      restore S Heat alarm restore
KJ fault     restore S Heat trouble restore
KR fire+fault+supervisory restore S Heat restoral
KS supervisory alarm S Heat supervisory
KT fault     alarm   S Heat trouble
KU supervisory restore S Heat unbypass
LB other     log     S Local program begin
LD other     log     S Local program denied
LE other     log     S Listen-in ended
LF other     log     S Listen-in begin
LR fault     restore S Phone line restoral
LS other     log     S Local program success
LT fault     alarm   S Phone line trouble
LU other     log     S Local program fail
LX other     log     S Local programming ended
MA panic     alarm   S Medical alarm
MB other     log     S Medical bypass
MH panic     restore S Medical alarm restore
MI other     log     P Message
MJ fault     restore S Medical trouble restore
MR panic+fault+supervisory restore S Medical restoral
MS supervisory alarm S Medical supervisory
MT fault     alarm   S Medical trouble
MU other     log     S Medical unbypass
NA supervisory alarm S No activity
NB other     log     P Arming event (night mode)
NC fault     alarm   S Network condition
ND panic     alarm   P Night mode deactivated under duress
NE other     log     P Arming event (night mode failed)
NF other     log     S Forced perimeter arm
NL other     log     S Perimeter armed
NM other     log     P Perimeter armed, user defined
NO other     log     P Arming event (night mode off)
NP other     log     P Arming event (night mode off by device)
NR fault     restore S Network restoral
NS supervisory restore S Activity resumed
NT fault     alarm   S Network failure
OA other     log     S Automatic opening
OB other     log     P Arming event (disarmed automatically)
OC other     log     S Cancel report
OG other     log     S Open area
OH other     log     S Early to open from alarm
OI other     log     S Fail to open
OJ other     log     S Late open
OK other     log     S Early open
OL other     log     S Late to open from alarm
OP other     log     S Opening report
OQ other     log     P Remote opening
OR other     log     S Disarm from alarm
OS other     log     S Opening keyswitch
OT other     log     S Late to close
OU fault     alarm   P Output state, trouble
OV fault     restore P Output state, restore
OZ other     log     S Point opening
PA panic     alarm   S Panic alarm
PB other     log     S Panic bypass
PC other     log     P Photo on demand enabled
PD other     log     P Photo on demand disabled
PE other     log     P Photo by scenario enabled
PF fault     alarm   P Malfunction (photo channel)
PG other     log     P Photo by scenario disabled
PH panic     restore S Panic alarm restore
PJ fault     restore S Panic trouble restore
PO fault     restore P Malfunction restore
PR panic+fault+supervisory restore S Panic restoral
PS supervisory alarm S Panic supervisory
PT fault     alarm   S Panic trouble
PU other     log     S Panic unbypass
QA panic     alarm   S Emergency alarm
QB other     log     S Emergency bypass
QH panic     restore S Emergency alarm restore
QJ fault     restore S Emergency trouble restore
QR panic+fault+supervisory restore S Emergency restoral
QS supervisory alarm S Emergency supervisory
QT fault     alarm   S Emergency trouble
QU other     log     S Emergency unbypass
RA other     log     S Remote programmer call failed
RB other     log     S Remote program begin
RC other     log     S Relay close
RD other     log     S Remote program denied
RN other     log     S Remote reset
RO other     log     S Relay open
RP test      live    S Automatic test
RR other     log     S Power up
RS other     log     S Remote program success
RT fault     once    S Data lost
RU other     log     S Remote program fail
RX test      alarm   S Manual test
RY test      live    S Test off normal
SA fire      alarm   S Sprinkler alarm
SB supervisory alarm S Sprinkler bypass
SC other     log     P Change of state
SH fire      restore S Sprinkler alarm restore
SJ fault     restore S Sprinkler trouble restore
SM fault     alarm   P Malfunction (leak protection)
SR fire+fault+supervisory restore S Sprinkler restoral
SS supervisory alarm S Sprinkler supervisory
ST fault     alarm   S Sprinkler trouble
SU supervisory restore S Sprinkler unbypass
TA burglary  alarm   S Tamper alarm
TB other     log     S Tamper bypass
TC test      log     S All points tested
TE test      log     S Test end
TH burglary  restore S Tamper alarm restore
TJ fault     restore S Tamper trouble restore
TP test      log     S Walk test point
TR burglary+fault restore S Tamper restoral
TS test      log     S Test start
TT fault     alarm   S Tamper trouble
TU other     log     S Tamper unbypass
TW other     log     P Area watch start
TX test      live    S Test report
TZ other     log     P Area watch end
UA other     alarm   S Untyped zone alarm
UB other     log     S Untyped zone bypass
UG other     alarm   P Unverified event, untyped
UH other     restore S Untyped alarm restore
UJ fault     restore S Untyped trouble restore
UR other+fault+supervisory restore S Untyped zone restoral
US supervisory alarm S Untyped zone supervisory
UT fault     alarm   S Untyped zone trouble
UU other     log     S Untyped zone unbypass
UX other     alarm   S Undefined alarm
UY fault     alarm   S Untyped missing trouble
UZ other     alarm   S Untyped missing alarm
VI fault     restore S Printer paper in
VO fault     alarm   S Printer paper out
VR fault     restore S Printer restore
VT fault     alarm   S Printer trouble
VX test      log     S Printer test
VY fault     restore S Printer online
VZ fault     alarm   S Printer offline
WA supervisory alarm S Water alarm
WB other     log     S Water bypass
WH supervisory restore S Water alarm restore
WJ fault     restore S Water trouble restore
WR supervisory+fault restore S Water restoral
WS supervisory alarm S Water supervisory
WT fault     alarm   S Water trouble
WU other     log     S Water unbypass
XA other     log     S Extra account report
XC fault     restore P Malfunction restore
XE fault     alarm   S Extra point
XF fault     alarm   S Extra RF point
XH fault     restore S RF interference restoral
XI other     log     S Sensor reset
XJ burglary  restore S RF receiver tamper restoral
XL fault     alarm   S Low received signal strength
XM burglary  alarm   S Missing alarm, cross point
XQ fault     alarm   S RF interference
XR fault     restore S Transmitter battery restoral
XS burglary  alarm   S RF receiver tamper
XT fault     alarm   S Transmitter battery trouble
XW other     log     S Forced point
XX fault     once    S Fail to test
YA fault     alarm   S Bell fault
YB other     log     S Busy seconds
YC fault     alarm   S Communications fail
YD fault     alarm   S Receiver line card trouble
YE fault     restore S Receiver line card restored
YF fault     once    S Parameter checksum fail
YG other     log     S Parameter changed
YH fault     restore S Bell restored
YI fault     alarm   S Overcurrent trouble
YJ fault     restore S Overcurrent restore
YK fault     restore S Communications restoral
YM fault     alarm   S System battery missing
YN other     log     S Invalid report
YO other     log     S Unknown message
YP fault     alarm   S Power supply trouble
YQ fault     restore S Power supply restored
YR fault     restore S System battery restoral
YS fault     alarm   S Communications trouble
YT fault     alarm   S System battery trouble
YU fault     once    P Diagnostic error
YW other     log     S Watchdog reset
YX fault     alarm   S Service required
YY other     log     S Status report
YZ fault     restore S Service completed
ZA supervisory alarm S Freeze alarm
ZB other     log     S Freeze bypass
ZH supervisory restore S Freeze alarm restore
ZJ fault     restore S Freeze trouble restore
ZR supervisory+fault restore S Freeze restoral
ZS supervisory alarm S Freeze supervisory
ZT fault     alarm   S Freeze trouble
ZU other     log     S Freeze unbypass
ZY other     log     P Device switched on
ZZ other     log     P Device switched off
"""
