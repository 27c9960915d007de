"""One catalogue of console labels, Chinese and English.

The sites are in China, so every label an operator or technician reads exists in
both languages here and nowhere else: templates and the page's JavaScript get
their strings from this catalogue (the JS receives it as a JSON block), so a
missing translation is caught by one test instead of by a night-shift operator.

The page's own labels are below; the words for what the gateway reports (event
types, reasons, states) are in :mod:`gateway.api.i18n_events`, the Chinese texts of
alarm codes in :mod:`gateway.api.i18n_codes`, why a device or the uplink is down in
:mod:`gateway.api.i18n_reasons`. Labels may hold ``{name}`` slots the
script fills (``Lf`` in console.js). A test fails when a Chinese label is missing,
equal to its English one or without Chinese in it (outside :data:`NOT_CHINESE`).
"""

from __future__ import annotations

from gateway.api.i18n_codes import ALARM_TEXT_ZH
from gateway.api.i18n_commissioning import COMMISSIONING_LABELS
from gateway.api.i18n_events import EVENT_LABELS
from gateway.api.i18n_reasons import REASON_LABELS

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"

#: labels with no Chinese in them on the Chinese page (the language switch names the other language)
NOT_CHINESE = frozenset({"lang.switch"})

#: key -> (zh, en)
_PAGE: dict[str, tuple[str, str]] = {
    "app.title": ("物业网关控制台", "Estate gateway console"),
    "app.short": ("网关", "Gateway"),
    "lang.switch": ("English", "中文"),
    "login.title": ("登录", "Sign in"),
    "login.token": ("访问令牌", "Access token"),
    "login.submit": ("登录", "Sign in"),
    "login.bad": ("令牌无效", "Unknown token"),
    "login.wait": ("错误次数过多，请稍后再试", "Too many wrong tokens; wait a minute and try again"),
    "login.hint": ("请输入管理员发放的令牌。", "Enter the token your administrator gave you."),
    "logout": ("退出", "Sign out"),
    "role.operator": ("值班员", "Operator"),
    "role.technician": ("技术员", "Technician"),
    "role.central": ("中心系统", "Central"),
    "role.admin": ("管理员", "Administrator"),
    "tab.duty": ("值班", "Duty"),
    "tab.tech": ("门禁卡", "Cards"),
    "tab.cards": ("门禁卡", "Cards"),
    "tab.meters": ("水表", "Meters"),
    "live.on": ("实时", "Live"),
    "live.off": ("连接中断，正在重连…", "Disconnected, reconnecting…"),
    "sound.enable": ("开启报警声音", "Enable alarm sound"),
    "sound.on": ("报警声音已开启", "Alarm sound on"),
    "sound.blocked": ("点击页面任意处以允许声音", "Click anywhere to allow the sound"),
    "sound.enable.short": ("开声音", "Sound"),
    "sound.on.short": ("声音开", "Sound on"),
    "sound.blocked.short": ("点击开声音", "Tap for sound"),
    "na": ("暂不可用", "Not available"),
    "na.route": ("此功能在本网关上尚不可用。", "This function is not available on this gateway yet."),
    "err.generic": ("操作失败", "Failed"),
    "err.forbidden": ("您的角色无权执行此操作", "Your role may not do this"),
    "err.network": ("无法连接网关", "The gateway cannot be reached"),
    "ok": ("确定", "OK"),
    "cancel": ("取消", "Cancel"),
    "confirm": ("确认", "Confirm"),
    "none": ("无", "None"),
    "at": ("于", "at"),
    "since": ("自", "since"),
    # banners (on every tab)
    "banner.show": ("查看并确认", "Show and acknowledge"),
    "banner.more": ("另有 {n} 条未确认报警", "{n} more unacknowledged"),
    "banner.uplink": ("与服务中心的连接已中断", "Uplink to the service centre is down"),
    "banner.uplink.detail": ("事件保存在本地，恢复后自动补发；待发送 {n} 条",
                             "events are kept here and sent when it is back; {n} waiting"),
    "banner.missed": ("{shift}交接班未记录（{at}）", "No handover recorded for the {shift} shift change ({at})"),
    "banner.missed.go": ("现在记录", "Record it now"),
    # alarms
    "alarms.title": ("报警", "Alarms"),
    "alarms.empty": ("没有未关闭的报警", "No open alarms"),
    "alarms.ack": ("确认", "Acknowledge"),
    "alarms.ack.title": ("确认报警", "Acknowledge alarm"),
    "alarms.note": ("处理说明", "Note"),
    "alarms.note.hint": ("写明已做的处理，例如：已派保安前往3号楼楼梯间",
                         "What was done, e.g. guard sent to the B3 stairwell"),
    "alarms.note.required": ("请先填写处理说明再确认：说明会随报警一起保存。",
                             "Write what was done before acknowledging: the note is kept with the alarm."),
    "alarms.acked": ("已确认", "Acknowledged"),
    "alarms.acked.by": ("{by} 于 {at} 确认", "Acknowledged by {by} at {at}"),
    "alarms.new": ("未确认", "Unacknowledged"),
    "alarms.restored": ("已恢复", "Restored"),
    "alarms.closed": ("已关闭", "Closed"),
    "alarms.escalated": ("已升级", "Escalated"),
    "alarms.zone": ("防区", "Zone"),
    "alarms.building": ("楼栋", "Building"),
    "alarms.code": ("代码", "Code"),
    "alarms.by": ("确认人", "By"),
    "kind.fire": ("火警", "Fire"),
    "kind.smoke": ("烟感", "Smoke"),
    "kind.burglary": ("入侵", "Burglary"),
    "kind.panic": ("紧急求助", "Panic"),
    "kind.fault": ("故障", "Fault"),
    "kind.supervisory": ("监管", "Supervisory"),
    "kind.test": ("测试", "Test"),
    "kind.other": ("其他", "Other"),
    # doors
    "doors.title": ("门禁状态", "Doors"),
    "doors.unlock": ("远程开门", "Unlock"),
    "doors.unlock.confirm": ("确认远程开门？", "Unlock this door now?"),
    "doors.unlocked.ok": ("已开门", "Door unlocked"),
    "doors.relock": ("重新上锁", "Relock"),
    "doors.relock.title": ("重新上锁：", "Relock:"),
    "doors.relock.reason": ("上锁原因", "Why relock it"),
    "doors.relock.reason.hint": ("例如：已确认误报，楼内人员安全", "e.g. false alarm confirmed on site"),
    "doors.relock.reason.required": ("请写明重新上锁的原因（会记录在审计日志中）。",
                                     "Say why the door is relocked (it goes into the audit log)."),
    "doors.relock.fire": ("引起开门的火警仍未恢复，这是疏散通道的门。", "The fire that released this door is still active."),
    "doors.relock.confirm": ("我确认在火警期间重新上锁此门", "I confirm relocking this door while the fire is active"),
    "doors.relock.confirm.required": ("火警仍未恢复：请勾选确认后再上锁。",
                                      "The fire is still active: tick the confirmation to relock."),
    "doors.relocked.ok": ("已重新上锁", "Door relocked"),
    "doors.hold.fire": ("火警 #{alarm} 联动开门", "Released by fire alarm #{alarm}"),
    "doors.hold.other": ("联动保持开启", "Held released"),
    "doors.hold.active": ("火警未恢复", "fire still active"),
    "doors.hold.ended": ("火警已恢复", "fire restored"),
    "doors.egress": ("疏散门", "Escape door"),
    "door.open": ("开", "Open"),
    "door.closed": ("关", "Closed"),
    "door.forced": ("强行开门", "Forced"),
    "door.held_open": ("开门超时", "Held open"),
    "door.offline": ("离线", "Offline"),
    "door.unlocked": ("已解锁", "Unlocked"),
    "door.unknown": ("未知", "Unknown"),
    # devices
    "devices.title": ("设备状态", "Device health"),
    "devices.uplink": ("上行链路", "Uplink"),
    "devices.outbox": ("待发送事件", "Outbox"),
    "devices.outbox_oldest": ("最早待发送事件已等待", "Oldest undelivered event waiting"),
    "banner.store": ("本地数据库无法写入：新事件未保存，请检查磁盘和数据库",
                     "The local store cannot write: new events are not being saved; check the disk and the database"),
    "devices.warning": ("警告", "Warning"),
    "banner.uplink.oldest": ("最早一条已等待 {age}", "the oldest has waited {age}"),
    "age.s": ("{n} 秒", "{n} s"),
    "age.min": ("{n} 分钟", "{n} min"),
    "age.h": ("{n} 小时", "{n} h"),
    "age.d": ("{n} 天", "{n} d"),
    "devices.connected": ("已连接", "Connected"),
    "devices.disconnected": ("未连接", "Disconnected"),
    "devices.online": ("在线", "Online"),
    "devices.offline": ("离线", "Offline"),
    "devices.pending": ("等待", "Waiting"),
    "devices.error": ("配置错误", "Profile error"),
    "devices.errors": ("错误", "Errors"),
    "kind.reader": ("读卡器", "Reader"),
    "kind.bus": ("总线", "Bus"),
    "kind.receiver": ("报警接收", "Receiver"),
    "kind.relay": ("继电器板", "Relay board"),
    # handover
    "handover.title": ("交接班", "Shift handover"),
    "handover.from": ("交班人", "From"),
    "handover.to": ("接班人", "To"),
    "handover.notes": ("交接事项", "Notes"),
    "handover.submit": ("记录交接", "Record handover"),
    "handover.done": ("交接已记录", "Handover recorded"),
    "handover.shift": ("当前班次", "Current shift"),
    "handover.open_alarms": ("未关闭报警", "Open alarms"),
    "handover.doors": ("异常门", "Doors in trouble"),
    "handover.meters": ("异常水表", "Meters in trouble"),
    "handover.unacknowledged_alarms": ("未确认报警", "Unacknowledged alarms"),
    "handover.alarms_since": ("上次交接后的报警", "Alarms since the last handover"),
    "handover.devices_offline": ("离线设备", "Devices offline"),
    "handover.last": ("上次交接", "Last handover"),
    "handover.covers_from": ("“上次交接后”各项自 {at} 起统计", "The \u201csince the last handover\u201d parts cover from {at}"),
    "handover.events_since": ("上次交接后的事件", "Events since the last handover"),
    "handover.supervision_faults": ("失联的报警主机", "Alarm panels silent"),
    "handover.supervision_off": ("未监测心跳的报警接收", "Receivers not supervised"),
    "handover.failed_swipes": ("上次交接后的刷卡失败", "Failed swipes since the last handover"),
    "handover.handover_missed": ("未记录的交接班", "Handovers not recorded"),
    "handover.missed.item": ("{shift}交接班（{at}）", "{shift} shift change ({at})"),
    # activity
    "activity.title": ("最新事件", "Latest events"),
    "activity.empty": ("暂无事件", "No events yet"),
    # technician
    "enrol.title": ("刷卡登记", "Enrol a card by swipe"),
    "enrol.door": ("刷卡门", "Swipe at door"),
    "enrol.unit": ("房号", "Unit"),
    "enrol.unit.hint": ("楼栋-单元-房间，如 3-1-0201", "building-entrance-flat, e.g. 3-1-0201"),
    "enrol.holder": ("持卡人", "Holder"),
    "enrol.kind": ("类型", "Holder type"),
    "enrol.scope": ("可开门范围", "Doors it opens"),
    "enrol.scope.hint": ("勾选此卡可开的门：整个小区、整栋楼、某单元或单个门",
                         "Tick what the card opens: the whole site, a building, a unit entrance or single doors"),
    "enrol.scope.required": ("请至少勾选一个门、单元或楼栋。", "Choose at least one door, unit or building."),
    "scope.all": ("小区全部门", "Every door of the site"),
    "scope.building": ("{b}号楼全部门", "Building {b}: all doors"),
    "scope.unit": ("{u}单元的门", "Unit {u} doors"),
    "scope.doors": ("单个门", "Single doors"),
    "enrol.valid_until": ("有效期至", "Valid until"),
    "enrol.hours": ("工作时间", "Working hours"),
    "enrol.days": ("工作日", "Working days"),
    "enrol.days.required": ("请至少选择一个工作日。", "Choose at least one working day."),
    "enrol.start": ("开始登记", "Start enrolment"),
    "enrol.waiting": ("请在此门刷卡：", "Swipe the card now at:"),
    "enrol.cancel": ("取消登记", "Cancel enrolment"),
    "enrol.cancelled": ("登记已取消", "Enrolment cancelled"),
    "enrol.done": ("卡片已登记", "Card issued"),
    "enrol.failed": ("登记失败", "Enrolment failed"),
    "enrol.expired": ("登记已超时", "Enrolment timed out"),
    "holder.resident": ("业主", "Resident"),
    "holder.family": ("家属", "Family"),
    "holder.tenant": ("租户", "Tenant"),
    "holder.worker": ("装修工人（临时卡）", "Worker (temporary)"),
    "holder.staff": ("员工", "Staff"),
    "verify.title": ("逐门验证", "Verification at each door"),
    "verify.hint": ("请持卡到以下每个门刷卡，每次刷卡的结果会立即显示。",
                    "Carry the card to each door below and swipe it: each swipe's result shows here at once."),
    "verify.yes": ("已验证", "Verified"),
    "verify.no": ("尚未刷卡", "Not swiped yet"),
    "verify.denied": ("被拒绝：{reason}", "Refused: {reason}"),
    "verify.last": ("最近一次刷卡", "Last swipe"),
    "verify.granted": ("已开门", "opened"),
    "verify.outside": ("（不在此卡的范围内）", "(not one of its doors)"),
    "verify.complete": ("全部门已验证", "Every door verified"),
    "cards.title": ("本户门禁卡", "Cards of a unit"),
    "cards.show": ("查询", "Show"),
    "cards.count": ("有效卡数量", "Active cards"),
    "cards.fee": ("本户已超过免费卡数量，第4张起收费。", "This unit is past its free cards: from the 4th card a fee is due."),
    "cards.fee.next": ("再发一张卡将收费。", "The next card for this unit is charged."),
    "cards.revoke": ("注销", "Revoke"),
    "cards.revoke.confirm": ("注销此卡？注销后立即在所有门失效。", "Revoke this card? It stops working at every door at once."),
    "cards.revoke.reason": ("注销原因", "Reason"),
    "cards.revoke.note": ("说明", "Note"),
    "cards.revoke.note.required": ("选择“其他”时请写明原因。", "With reason “Other”, say why in the note."),
    "cards.revoked": ("已注销", "Revoked"),
    "cards.active": ("有效", "Active"),
    "cards.card": ("卡号", "Card"),
    "cards.expires": ("到期", "Expires"),
    "cards.hours": ("时段", "Hours"),
    "cards.status": ("状态", "Status"),
    "cards.verify": ("验证", "Verify"),
    "cards.edit": ("修改可开门", "Change doors"),
    "cards.edit.title": ("修改此卡可开的门：", "Doors this card opens:"),
    "cards.updated": ("已修改可开门范围", "Doors changed"),
    # meters
    "meters.title": ("热水表", "Hot-water meters"),
    "meters.building": ("楼栋", "Building"),
    "meters.id": ("表号", "Meter"),
    "meters.unit": ("房号", "Unit"),
    "meters.total": ("累计用量 m³", "Total m³"),
    "meters.read_at": ("读数时间", "Read at"),
    "meters.state": ("状态", "State"),
    "meters.valve": ("阀门", "Valve"),
    "meters.anomaly": ("异常与故障", "Anomalies and faults"),
    "meters.actions": ("阀门操作", "Valve command"),
    "meters.chart": ("近期用量", "Recent consumption"),
    "meters.nodata": ("暂无读数", "No readings yet"),
    "meters.mismatch": ("阀门读回为“{read}”，指令为“{cmd}”", "Valve reads {read}, commanded {cmd}"),
    "valve.do.open": ("开阀", "Open"),
    "valve.do.restrict": ("限流", "Restrict"),
    "valve.do.close": ("关阀", "Close"),
    "valve.confirm": ("确认对水表 {meter} 执行：{action}？", "Send “{action}” to meter {meter}?"),
    "valve.done": ("阀门指令已执行", "Valve command done"),
    "devices.uplink_node": ("当前服务器节点", "Broker node in use"),
    "devices.failovers": ("节点切换次数", "Failovers"),
}

CATALOGUE: dict[str, tuple[str, str]] = {**_PAGE, **EVENT_LABELS, **COMMISSIONING_LABELS, **REASON_LABELS}


def pick_lang(requested: str | None, accept_language: str | None = None) -> str:
    """The language to show: an explicit choice, else the browser's preference, else Chinese."""
    if requested in LANGS:
        return requested
    accept = (accept_language or "").lower()
    if accept.startswith("en"):
        return "en"
    return DEFAULT_LANG


def t(lang: str, key: str) -> str:
    """One label; an unknown key shows itself so a gap is visible instead of blank."""
    pair = CATALOGUE.get(key)
    if pair is None:
        return key
    return pair[0] if lang == "zh" else pair[1]


def catalogue(lang: str) -> dict[str, str]:
    """Every label in one language (sent to the page's JavaScript)."""
    return {key: t(lang, key) for key in CATALOGUE}


def alarm_texts(lang: str) -> dict[str, str]:
    """Alarm code -> text for the page: Chinese texts on the Chinese page; the English page shows the panel's words."""
    return dict(ALARM_TEXT_ZH) if lang == "zh" else {}
