"""One catalogue of console labels, Chinese and English.

The sites are in China, so every label an operator or technician reads exists in
both languages here and nowhere else: templates and the page's JavaScript get
their strings from this catalogue (the JS receives it as a JSON block), so a
missing translation is caught by one test instead of by a night-shift operator.
"""

from __future__ import annotations

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"

#: key -> (zh, en)
CATALOGUE: dict[str, tuple[str, str]] = {
    "app.title": ("物业网关控制台", "Estate gateway console"),
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
    "tab.meters": ("水表", "Meters"),
    "live.on": ("实时", "Live"),
    "live.off": ("连接中断，正在重连…", "Disconnected, reconnecting…"),
    "sound.enable": ("开启报警声音", "Enable alarm sound"),
    "sound.on": ("声音已开启", "Sound on"),
    "na": ("暂不可用", "Not available"),
    "na.route": ("此功能在本网关上尚不可用。", "This function is not available on this gateway yet."),
    "err.generic": ("操作失败", "Failed"),
    "ok": ("确定", "OK"),
    "cancel": ("取消", "Cancel"),
    "confirm": ("确认", "Confirm"),
    "none": ("无", "None"),
    # alarms
    "alarms.title": ("报警", "Alarms"),
    "alarms.empty": ("没有未关闭的报警", "No open alarms"),
    "alarms.ack": ("确认", "Acknowledge"),
    "alarms.ack.title": ("确认报警", "Acknowledge alarm"),
    "alarms.note": ("处理说明", "Note"),
    "alarms.acked": ("已确认", "Acknowledged"),
    "alarms.new": ("未确认", "Unacknowledged"),
    "alarms.restored": ("已恢复", "Restored"),
    "alarms.closed": ("已关闭", "Closed"),
    "alarms.escalated": ("已升级", "Escalated"),
    "alarms.zone": ("防区", "Zone"),
    "alarms.building": ("楼栋", "Building"),
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
    "devices.connected": ("已连接", "Connected"),
    "devices.disconnected": ("未连接", "Disconnected"),
    "devices.online": ("在线", "Online"),
    "devices.offline": ("离线", "Offline"),
    "devices.pending": ("等待", "Waiting"),
    "devices.errors": ("错误", "Errors"),
    "kind.reader": ("读卡器", "Reader"),
    "kind.bus": ("总线", "Bus"),
    "kind.receiver": ("报警接收", "Receiver"),
    # handover
    "handover.title": ("交接班", "Shift handover"),
    "handover.from": ("交班人", "From"),
    "handover.to": ("接班人", "To"),
    "handover.notes": ("交接事项", "Notes"),
    "handover.submit": ("记录交接", "Record handover"),
    "handover.done": ("交接已记录", "Handover recorded"),
    "handover.open_alarms": ("未关闭报警", "Open alarms"),
    "handover.doors": ("异常门", "Doors in trouble"),
    "handover.meters": ("异常水表", "Meters in trouble"),
    "handover.unacknowledged_alarms": ("未确认报警", "Unacknowledged alarms"),
    "handover.alarms_since": ("上次交接后的报警", "Alarms since the last handover"),
    "handover.devices_offline": ("离线设备", "Devices offline"),
    "handover.last": ("上次交接", "Last handover"),
    "handover.events_since": ("上次交接后的事件", "Events since the last handover"),
    # events listed in the handover report (event.<type>)
    "event.door.forced": ("强行开门", "Door forced"),
    "event.door.held_open": ("开门超时", "Door held open"),
    "event.device.offline": ("设备离线", "Device offline"),
    "event.device.online": ("设备恢复在线", "Device back online"),
    "event.meter.offline": ("水表离线", "Meter offline"),
    "event.meter.online": ("水表恢复在线", "Meter back online"),
    "event.meter.anomaly": ("水表异常", "Meter anomaly"),
    "event.alarm.escalated": ("报警升级", "Alarm escalated"),
    # activity
    "activity.title": ("最新事件", "Latest events"),
    # technician
    "enrol.title": ("刷卡登记", "Enrol a card by swipe"),
    "enrol.door": ("刷卡门", "Swipe at door"),
    "enrol.unit": ("房号", "Unit"),
    "enrol.holder": ("持卡人", "Holder"),
    "enrol.kind": ("类型", "Holder type"),
    "enrol.scope": ("可开门范围", "Doors it opens"),
    "enrol.scope.hint": ("门编号、building:3、unit:3-1 或 *，用逗号分隔",
                         "door ids, building:3, unit:3-1 or *, comma separated"),
    "enrol.valid_until": ("有效期至", "Valid until"),
    "enrol.hours": ("工作时间", "Working hours"),
    "enrol.start": ("开始登记", "Start enrolment"),
    "enrol.waiting": ("请在此门刷卡：", "Swipe the card now at:"),
    "enrol.done": ("卡片已登记", "Card issued"),
    "enrol.failed": ("登记失败", "Enrolment failed"),
    "enrol.expired": ("登记已超时", "Enrolment timed out"),
    "holder.resident": ("业主", "Resident"),
    "holder.family": ("家属", "Family"),
    "holder.tenant": ("租户", "Tenant"),
    "holder.worker": ("装修工人（临时卡）", "Worker (temporary)"),
    "holder.staff": ("员工", "Staff"),
    "verify.title": ("逐门验证", "Verification at each door"),
    "verify.hint": ("请持卡到以下每个门刷卡。", "Carry the card to each door below and swipe it."),
    "verify.yes": ("已验证", "Verified"),
    "verify.no": ("待验证", "Not yet"),
    "verify.complete": ("全部门已验证", "Every door verified"),
    "cards.title": ("本户门禁卡", "Cards of a unit"),
    "cards.show": ("查询", "Show"),
    "cards.count": ("有效卡数量", "Active cards"),
    "cards.fee": ("本户已超过免费卡数量，第4张起收费。", "This unit is past its free cards: from the 4th card a fee is due."),
    "cards.fee.next": ("再发一张卡将收费。", "The next card for this unit is charged."),
    "cards.revoke": ("挂失注销", "Revoke (lost)"),
    "cards.revoke.confirm": ("确认注销此卡？注销后立即失效。", "Revoke this card? It stops working at once."),
    "cards.revoked": ("已注销", "Revoked"),
    "cards.active": ("有效", "Active"),
    "cards.card": ("卡号", "Card"),
    "cards.expires": ("到期", "Expires"),
    "cards.hours": ("时段", "Hours"),
    "cards.status": ("状态", "Status"),
    "cards.verify": ("验证", "Verify"),
    # meters
    "meters.title": ("热水表", "Hot-water meters"),
    "meters.building": ("楼栋", "Building"),
    "meters.unit": ("房号", "Unit"),
    "meters.total": ("累计用量 m³", "Total m³"),
    "meters.read_at": ("读数时间", "Read at"),
    "meters.state": ("状态", "State"),
    "meters.valve": ("阀门", "Valve"),
    "meters.anomaly": ("异常", "Anomaly"),
    "meters.chart": ("近期用量", "Recent consumption"),
    "meters.nodata": ("暂无读数", "No readings yet"),
    "valve.open": ("开", "Open"),
    "valve.closed": ("关", "Closed"),
    "valve.close": ("关", "Closed"),
    "anomaly.reverse": ("倒流", "Reverse flow"),
    "anomaly.leak": ("漏水", "Leak"),
    "anomaly.spike": ("用量突增", "Spike"),
    "anomaly.stuck": ("读数不变", "Stuck"),
}


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
