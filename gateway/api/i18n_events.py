"""Labels for what the gateway reports, Chinese and English (part of the console's catalogue).

Event types, the reasons events carry (why a swipe was refused, why a door was released, why a
card was revoked), alarm and valve states, meter faults, shifts and weekdays: the words the page
puts where the API has a code. :mod:`gateway.api.i18n` merges them into its ``CATALOGUE``; a test
checks every event type the gateway emits and every reason the contract names has its label here,
so "Latest events" and the handover report never show a raw code.
"""

from __future__ import annotations

#: key -> (zh, en)
EVENT_LABELS: dict[str, tuple[str, str]] = {
    # event types (event.<type>)
    "event.access.granted": ("刷卡通行", "Access granted"),
    "event.access.denied": ("刷卡被拒", "Access denied"),
    "event.door.opened": ("门已打开", "Door opened"),
    "event.door.closed": ("门已关闭", "Door closed"),
    "event.door.forced": ("强行开门", "Door forced"),
    "event.door.held_open": ("开门超时", "Door held open"),
    "event.door.unlocked": ("门已解锁", "Door unlocked"),
    "event.door.relocked": ("门已重新上锁", "Door relocked"),
    "event.card.issued": ("发卡", "Card issued"),
    "event.card.revoked": ("卡已注销", "Card revoked"),
    "event.card.verified": ("逐门验证刷卡", "Verification swipe"),
    "event.card.fee_due": ("需收取卡费", "Card fee due"),
    "event.card.updated": ("卡权限已修改", "Card changed"),
    "event.meter.reading": ("水表读数", "Meter reading"),
    "event.meter.billing_reading": ("结算读数", "Billing reading"),
    "event.meter.billing_missing": ("结算读数缺失", "Billing reading missing"),
    "event.meter.offline": ("水表离线", "Meter offline"),
    "event.meter.online": ("水表恢复在线", "Meter back online"),
    "event.meter.anomaly": ("水表异常", "Meter anomaly"),
    "event.meter.valve": ("阀门动作", "Valve set"),
    "event.meter.fault": ("水表故障", "Meter fault"),
    "event.meter.fault_cleared": ("水表故障已恢复", "Meter fault cleared"),
    "event.meter.valve_mismatch": ("阀门状态与指令不符", "Valve does not match its command"),
    "event.meter.valve_mismatch_cleared": ("阀门状态已恢复一致", "Valve matches its command again"),
    "event.alarm.raised": ("报警", "Alarm raised"),
    "event.alarm.acknowledged": ("报警已确认", "Alarm acknowledged"),
    "event.alarm.restored": ("报警已恢复", "Alarm restored"),
    "event.alarm.escalated": ("报警升级", "Alarm escalated"),
    "event.alarm.closed": ("报警已关闭", "Alarm closed"),
    "event.alarm.test_received": ("防区测试信号", "Zone walk test received"),
    "event.device.offline": ("设备离线", "Device offline"),
    "event.device.online": ("设备恢复在线", "Device back online"),
    "event.gateway.started": ("网关已启动", "Gateway started"),
    "event.gateway.outbox_near_full": ("待发送事件即将存满", "Outbox nearly full"),
    "event.gateway.test": ("测试事件", "Test event"),
    "event.store.rewound": ("本地数据库回退：部分事件在本机丢失", "Local database went back: events lost here"),
    "event.shift.handover": ("交接班", "Shift handover"),
    "event.shift.handover_missed": ("交接班未记录", "Handover missed"),
    "event.shift.handover_missed_cleared": ("已补记交接班", "Missed handover recorded"),
    # why a swipe was refused (access.denied reason, card.verified reason)
    "reason.unknown": ("未登记的卡", "unknown card"),
    "reason.revoked": ("卡已注销", "card revoked"),
    "reason.expired": ("卡已过期", "card expired"),
    "reason.not_yet_valid": ("卡尚未生效", "card not valid yet"),
    "reason.outside_schedule": ("不在允许的时段内", "outside its hours"),
    "reason.not_permitted": ("无权开此门", "not allowed at this door"),
    "reason.anti_passback": ("防潜回：未正常出入", "anti-passback: not left the last time"),
    "reason.reader_offline": ("读卡器离线", "reader offline"),
    # why a meter stopped answering (meter.offline error: the Modbus error's kind)
    "merror.timeout": ("无应答", "no answer"),
    "merror.framing": ("应答数据错误", "garbled answer"),
    "merror.exception": ("设备报错", "error reply"),
    "merror.connection": ("连接失败", "connection failed"),
    "merror.error": ("通信错误", "communication error"),
    # why a door was released (door.unlocked reason) or relocked
    "unlock.operator": ("值班室远程开门", "by the duty room"),
    "unlock.fire": ("火警联动", "fire alarm"),
    "unlock.schedule": ("定时开门", "schedule"),
    "unlock.card": ("刷卡", "card"),
    # why a card was revoked (card.revoked reason)
    "revoke.lost": ("丢失", "Lost"),
    "revoke.stolen": ("被盗", "Stolen"),
    "revoke.moved_out": ("已搬离", "Moved out"),
    "revoke.damaged": ("损坏", "Damaged"),
    "revoke.other": ("其他", "Other"),
    "revoke.revoked": ("已注销", "Revoked"),
    # why a card fee is due (card.fee_due why)
    "fee.beyond_free": ("超出免费卡数量", "beyond the free cards"),
    "fee.replacement_lost": ("补办丢失的卡", "replaces a lost card"),
    # alarm states (in the handover report)
    "astate.raised": ("未确认", "raised"),
    "astate.acknowledged": ("已确认", "acknowledged"),
    "astate.restored": ("已恢复", "restored"),
    "astate.closed": ("已关闭", "closed"),
    # shifts and ISO weekdays
    "shift.day": ("白班", "day"),
    "shift.night": ("夜班", "night"),
    "day.1": ("周一", "Mon"),
    "day.2": ("周二", "Tue"),
    "day.3": ("周三", "Wed"),
    "day.4": ("周四", "Thu"),
    "day.5": ("周五", "Fri"),
    "day.6": ("周六", "Sat"),
    "day.7": ("周日", "Sun"),
    # meters: valve states, faults, anomalies
    "valve.open": ("开", "Open"),
    "valve.closed": ("关", "Closed"),
    "valve.close": ("关", "Closed"),
    "valve.restricted": ("限流", "Restricted"),
    "valve.unknown": ("未知", "Unknown"),
    "fault.no_hot_water": ("无热水", "No hot water"),
    "anomaly.reverse": ("倒流", "Reverse flow"),
    "anomaly.leak": ("漏水", "Leak"),
    "anomaly.spike": ("用量突增", "Spike"),
    "anomaly.stuck": ("读数不变", "Stuck"),
}
