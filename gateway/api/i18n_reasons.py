"""Why a device or the uplink is down, in Chinese and English (part of the console's catalogue).

The gateway reports a reason as a code with parameters (``drivers/reasons.py``,
``gateway/reasons.py``); the page shows ``why.<code>`` from here with the parameters filled in
(``Lf`` in console.js). Details that are the machine's own words (an OS error, the bus's account of
a refused handshake) stay as they came: they are for the technician's search engine, not for
translation. A test checks every code in the registry has both texts here, with only the slots the
code carries.
"""

from __future__ import annotations

#: key -> (zh, en)
REASON_LABELS: dict[str, tuple[str, str]] = {
    # drivers
    "why.driver_crashed": ("驱动程序崩溃：{error}；{seconds} 秒后重启", "driver crashed: {error}; restarting in {seconds} s"),
    "why.open_failed": ("无法打开端口：{error}", "cannot open the port: {error}"),
    "why.read_failed": ("端口读取失败：{error}", "reading the port failed: {error}"),
    "why.port_error": ("端口故障：{error}", "port fault: {error}"),
    "why.no_reply": ("无应答", "no reply"),
    "why.secure_channel_failed": ("OSDP 安全通道被拒绝：{detail}（请检查 scbk_file {key_file}）",
                                  "OSDP secure channel refused: {detail} (check scbk_file {key_file})"),
    "why.secure_channel_key_mismatch": (
        "OSDP 安全通道被拒绝：{detail}（请检查 scbk_file {key_file}；出厂状态的读卡器需先设置一次 install_mode = true）",
        "OSDP secure channel refused: {detail} (check scbk_file {key_file}; "
        "a factory-fresh reader needs install_mode = true once)"),
    "why.plain_refused": ("OSDP 明文连接被拒绝：{detail}", "OSDP plain link refused: {detail}"),
    "why.bus_error": ("总线故障（{kind}）：{error}", "bus fault ({kind}): {error}"),
    # gateway: devices
    "why.task_crashed": ("驱动程序崩溃：{error}", "driver crashed: {error}"),
    "why.bus_unreachable": ("总线无法连接：{error}", "bus unreachable: {error}"),
    "why.cannot_listen": ("无法监听端口：{error}", "cannot listen: {error}"),
    "why.bad_key_file": ("密钥文件（key_file）无效", "bad key_file"),
    "why.panel_silent": ("报警主机无信号", "panel silent"),
    "why.panels_silent": ("报警主机无信号：{panels}", "panels silent: {panels}"),
    "why.panel_heard_again": ("报警主机已恢复通信", "panel heard again"),
    "why.plain_dc09_refused": ("拒绝未加密的 DC-09 报文（账号 {account}）：报警主机须加密，或设置 allow_plain",
                               "plain DC-09 blocks refused (account {account}): the panel must encrypt, "
                               "or set allow_plain"),
    # gateway: the uplink
    "why.broker_refused": ("消息服务器拒绝连接：{detail}", "broker refused connection: {detail}"),
    "why.tls_untrusted": ("TLS：{where} 的服务器证书不受信任（{detail}）；请检查 mqtt.ca_file（{ca}）及证书是否包含 {host}",
                          "TLS: the broker's certificate at {where} is not trusted ({detail}); check mqtt.ca_file "
                          "({ca}) and that the certificate names {host}"),
    "why.tls_failed": ("与 {where} 的 TLS 握手失败：{detail}", "TLS handshake with {where} failed: {detail}"),
    "why.connection_refused": ("{where} 拒绝连接：该端口没有消息服务器",
                               "connection refused by {where}: no broker listening there"),
    "why.no_answer": ("{where} 无应答（超时）", "no answer from {where} (timeout)"),
    "why.cannot_connect": ("无法连接 {where}：{detail}", "cannot connect to {where}: {detail}"),
    "why.broker_unreachable": ("连接失败（服务器不可达、TLS 或认证问题，详见日志）",
                               "connection failed (broker unreachable, TLS or auth problem; see log)"),
    "why.client_cert_required": ("TLS：服务器要求客户端证书并拒绝了本网关的证书（请设置 mqtt.client_cert_file 和 mqtt.client_key_file）",
                                 "TLS: the broker requires a client certificate and rejected ours "
                                 "(set mqtt.client_cert_file and mqtt.client_key_file)"),
    "why.tls_closed": ("TLS：服务器关闭了连接：{detail}", "TLS: the broker closed the connection: {detail}"),
    "why.closed_early": ("到 {where} 的连接在服务器接受前被关闭：{detail}",
                         "connection to {where} closed before the broker accepted it: {detail}"),
    "why.closed_early_plain": ("到 {where} 的连接在服务器接受前被关闭：{detail}（如该端口使用 TLS，请改用 mqtts:// 地址）",
                               "connection to {where} closed before the broker accepted it: {detail} "
                               "(if that port speaks TLS, use an mqtts:// url)"),
    "why.disconnected": ("连接已断开：{detail}", "disconnected: {detail}"),
    "why.node_stalled": ("{where} 停止确认：{outstanding} 条消息 {seconds} 秒未获确认（心跳 {keepalive} 秒）",
                         "{where} stopped acknowledging: {outstanding} publishes unacknowledged for {seconds} s "
                         "(keepalive {keepalive} s)"),
}
