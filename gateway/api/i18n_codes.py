"""Chinese texts of the alarm codes a panel can raise an alarm with (part of the console's catalogue).

The alarms area keeps a panel's own words (``text``: English for Contact ID and SIA, from
:mod:`drivers.cid_codes` and :mod:`drivers.sia_code_table`; Chinese already for GB/T 26875.3).
A duty-room operator reading the Chinese page must not be handed "AC loss" or "Sensor tamper",
so every code that *raises* an alarm in those two tables has its Chinese text here, keyed by the
``code`` the alarm carries (``"110"``, ``"FA"``). ``tests/console/test_i18n.py`` reads the
drivers' tables and fails when a code that raises an alarm has no text here. A code not listed
(a future table entry, an unknown code) is shown as its kind and number, never in English.

Terms follow GB 50116 / GB 4717 usage where one exists (火灾报警、监管报警、故障、旁路、手动报警按钮).
"""

from __future__ import annotations

_CID = """
100 医疗求助
101 个人紧急求助
102 未按时报到
110 火灾报警
111 感烟报警
112 燃烧报警
113 水流指示器动作
114 感温报警
115 手动报警按钮动作
116 风管探测器报警
117 火焰探测器报警
118 火灾预警
120 紧急求助
121 胁迫报警
122 无声求助
123 有声求助
124 胁迫报警（已放行进入）
125 胁迫报警（已放行外出）
126 疑似抢劫
129 确认抢劫
130 入侵报警
131 周界入侵
132 室内入侵
133 24小时防区报警（保险柜）
134 出入口防区报警
135 日夜防区报警
136 室外入侵
137 防拆报警
138 入侵预警
139 入侵复核
140 一般报警
141 总线回路开路
142 总线回路短路
143 扩展模块失效
144 探测器防拆
145 扩展模块防拆
146 无声入侵报警
147 探测器监控失败
150 24小时非入侵防区报警
151 可燃气体泄漏
152 冷藏设备故障
153 供暖中断
154 漏水
155 防盗贴膜断裂
156 日间故障
157 瓶装气不足
158 温度过高
159 温度过低
160 24小时非入侵防区报警
161 通风中断
162 一氧化碳报警
163 液位报警
168 湿度过高
169 湿度过低
200 消防监管报警
201 水压过低
202 二氧化碳不足
203 闸阀传感器动作
204 水位过低
205 水泵启动
206 水泵故障
210 消防监管报警
300 系统故障
301 交流电断电
302 主机电池电压低
303 内存校验错误
304 程序校验错误
307 自检失败
308 系统关机
309 电池测试失败
310 接地故障
311 电池缺失或失效
312 电源过流
314 主电源故障
316 主机防拆
320 警号或继电器故障
321 警号一故障
322 警号二故障
323 报警继电器故障
324 故障继电器故障
325 反向继电器故障
326 第三通知回路故障
327 第四通知回路故障
330 外围设备故障
331 总线回路开路（故障）
332 总线回路短路（故障）
333 扩展模块失效（故障）
334 中继器故障
335 本地打印机缺纸
336 本地打印机故障
337 扩展模块直流断电
338 扩展模块电池电压低
339 扩展模块复位
340 外围设备故障
341 扩展模块防拆（故障）
342 扩展模块交流断电
343 扩展模块自检失败
344 无线接收受干扰
345 加密通信故障
350 通信故障
351 电话线一故障
352 电话线二故障
353 远程无线发射器故障
354 事件发送失败
355 无线监控信号丢失
356 中心轮询丢失
357 远程无线驻波异常
358 定期通信测试失败
360 通信故障
370 防护回路故障
371 防护回路开路
372 防护回路短路
373 消防回路故障
374 退出延时错误报警
375 紧急求助防区故障
376 防抢劫防区故障
377 重复触发故障
378 交叉防区故障
380 探测器故障
381 无线探测器监控丢失
382 远程模块监控丢失
383 探测器防拆（故障）
384 无线探测器电池电压低
385 感烟探测器灵敏度过高
386 感烟探测器灵敏度过低
387 入侵探测器灵敏度过高
388 入侵探测器灵敏度过低
389 探测器自检失败
391 探测器监视故障
392 漂移补偿错误
393 需要维护
423 强行闯入
426 门禁门被撑开
427 门磁监测故障
428 出门按钮故障
432 门禁继电器故障
571 消防防区被旁路
601 手动触发测试
607 步行测试模式
616 请求维修
626 主机时间不准
641 独居老人监护故障
654 长时间无活动
796 无法输出信号（派生通道）
798 控制器掉线（派生通道）
922 监管点报警
924 监管点故障
926 交流电断电超过4小时
927 输出故障
954 与接警中心连接失败
961 接警数据库连接失败
"""

_SIA = """
AA 报警（主机被替换）
AS 模拟量需维护
AT 交流电故障
BA 入侵报警
BD 重复触发故障
BG 未复核入侵事件
BM 入侵报警（交叉防区）
BS 入侵监管报警
BT 入侵防区故障
BV 入侵已复核
BZ 监控信号丢失
CM 刚布防后报警
DF 门被强行打开
DJ 门被强行打开（故障）
DL 门长时间未关（报警）
DM 门长时间未关（故障）
DT 门禁故障
EA 出口报警
EM 扩展设备丢失
ES 扩展设备防拆
ET 扩展设备故障
EX 外部设备状态异常
EZ 退出错误后报警
FA 火灾报警
FB 消防防区被旁路
FG 未复核火灾事件
FM 火灾报警（交叉防区）
FS 消防监管报警
FT 消防故障
FW 消防监管故障
FY 消防故障信号丢失
FZ 消防监管信号丢失
GA 可燃气体报警
GS 可燃气体监管报警
GT 可燃气体探测故障
HA 抢劫报警
HS 防抢劫监管报警
HT 防抢劫防区故障
IA 设备失效
JA 用户密码被篡改
KA 感温报警
KB 感温防区被旁路
KS 感温监管报警
KT 感温防区故障
LT 电话线故障
MA 医疗求助
MS 医疗求助监管报警
MT 医疗求助防区故障
NA 长时间无活动
NC 网络状态异常
ND 胁迫解除夜间模式
NT 网络故障
OU 输出状态故障
PA 紧急求助
PF 光电通道故障
PS 紧急求助监管报警
PT 紧急求助防区故障
QA 紧急报警
QS 紧急报警监管
QT 紧急报警防区故障
RT 数据丢失
RX 手动测试
SA 喷淋报警
SB 喷淋防区被旁路
SM 防漏水保护故障
SS 喷淋监管报警
ST 喷淋系统故障
TA 防拆报警
TT 防拆故障
UA 未定义防区报警
UG 未复核事件
US 未定义防区监管报警
UT 未定义防区故障
UX 未定义报警
UY 未定义防区故障信号丢失
UZ 未定义防区报警信号丢失
VO 打印机缺纸
VT 打印机故障
VZ 打印机离线
WA 水浸报警
WS 水浸监管报警
WT 水浸探测故障
XE 多余的防区
XF 多余的无线防区
XL 无线信号弱
XM 交叉防区报警信号丢失
XQ 无线干扰
XS 无线接收器防拆
XT 发射器电池故障
XX 测试失败
YA 警铃故障
YC 通信失败
YD 接收机线路卡故障
YF 参数校验失败
YI 过流故障
YM 主机电池缺失
YP 电源故障
YS 通信故障
YT 主机电池故障
YU 诊断错误
YX 需要维修
ZA 冰冻报警
ZS 冰冻监管报警
ZT 冰冻探测故障
"""

#: the gateway's own codes (``gateway.alarms.signals``): a panel that went silent
_GATEWAY = """
silent 报警主机失联（未按时发送心跳）
"""


def _table(text: str) -> dict[str, str]:
    return dict(line.split(None, 1) for line in text.strip().splitlines())


#: alarm ``code`` -> its Chinese text
ALARM_TEXT_ZH: dict[str, str] = {**_table(_CID), **_table(_SIA), **_table(_GATEWAY)}
