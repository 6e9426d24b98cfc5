"""Rule-based explanations for imported samples: which features a payload has, what they do.

Public collections (`Query,Label`, `Sentence,Label`) only say "malicious or not". To turn a row
into a full record, the importer needs an analysis, a rating, a risk and a solution; this module
finds the payload's concrete features (a tautology, `UNION SELECT`, a stacked `DROP`, an `onerror`
handler, `document.cookie`, `/dev/tcp`, `pickle.loads` ...), rates the row by its most severe
feature, and words the parts from what it found, so imported analyses still name what this very
input does. A malicious row with no recognised feature gets a cautious generic explanation
(medium); a benign row gets a "no pattern found" one (safe).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fwyy_ollama.report import Label, Report


@dataclass(frozen=True)
class Feature:
    name: str
    pattern: re.Pattern[str]
    label: Label
    en: str
    zh: str
    cwe: str


def _f(name: str, pattern: str, label: Label, en: str, zh: str, cwe: str) -> Feature:
    return Feature(name, re.compile(pattern, re.I | re.S), label, en, zh, cwe)


S, L, M, H, C = Label.SAFE, Label.LOW, Label.MEDIUM, Label.HIGH, Label.CRITICAL

_SQL_STATEMENT = r"(select\b[^\"'\n]*\bfrom\b|insert\s+into\b|update\s+\w+\s+set\b|delete\s+from\b)"
"""An SQL statement's opening inside one string literal (for the Python rules)."""

FEATURES: dict[str, tuple[Feature, ...]] = {
    "sqli": (
        _f(
            "stacked",
            r";\s*(drop|delete|truncate|shutdown|alter|create|insert|update)\b",
            C,
            "stacks a second statement (`{m}`) that modifies or destroys data",
            "堆叠了第二条会修改或破坏数据的语句（`{m}`）",
            "CWE-89",
        ),
        _f(
            "os_exec",
            r"xp_cmdshell|into\s+(out|dump)file|to\s+program|load_file\s*\(",
            C,
            "reaches the operating system or file system through `{m}`",
            "通过 `{m}` 触及操作系统或文件系统",
            "CWE-89, CWE-78",
        ),
        _f(
            "union",
            r"union(\s+all)?\s+select",
            H,
            "appends `{m}` to pull rows from other tables into the response",
            "追加 `{m}`，把其他表的数据带进响应",
            "CWE-89",
        ),
        _f(
            "tautology",
            r"\bor\b\s*\(?\s*(['\"]?)(\w*)\1\s*(=|like)\s*(['\"]?)\2(?:\4)?(?![\w(])|\bor\b\s+(true|not\s+false)\b",
            H,
            "adds an always-true condition (`{m}`) so the WHERE clause matches every row",
            "加入恒真条件（`{m}`），使 WHERE 匹配所有行",
            "CWE-89",
        ),
        _f(
            "comment",
            r"'\s*(--|#|/\*)",
            H,
            "closes the string and comments out the rest of the query (`{m}`)",
            "闭合字符串并注释掉查询的剩余部分（`{m}`）",
            "CWE-89",
        ),
        _f(
            "time",
            r"\b(sleep|benchmark|pg_sleep|waitfor\s+delay)\b|dbms_pipe\.receive_message"
            r"|generate_series\s*\(\s*\d+\s*,\s*\d{6,}|randomblob\s*\(\s*\d{6,}"
            r"|count\s*\(\s*\*\s*\)\s+from\s+(?P<heavy>[\w.$:]+)(\s+as)?\s+\w+\s*,\s*(?P=heavy)\b",
            M,
            "uses `{m}` to delay the response, a time-based blind technique",
            "使用 `{m}` 拖延响应，属于时间盲注",
            "CWE-89",
        ),
        _f(
            "error",
            r"\b(extractvalue|updatexml|convert\s*\(\s*int|cast\s*\()|gtid_subset|uuid_to_bin|json_keys"
            r"|exp\s*\(\s*~|floor\s*\(\s*rand\s*\(\s*0|ctxsys\.|utl_inaddr|dbms_xdb|xmltype\s*\(",
            M,
            "forces a database error with `{m}` to leak values in the message",
            "借 `{m}` 触发数据库报错，在错误信息中泄露数据",
            "CWE-89, CWE-209",
        ),
        _f(
            "boolean",
            r"\band\b\s+\d+\s*=\s*\d+|\band\b\s+(substring|ascii|length)\s*\("
            r"|\b(and|or)\b\s+\(?\s*(select|case\s+when|make_set|elt)\b|\band\b\s+['\"]\w+['\"]\s*(=|like)\s*['\"]\w"
            r"|ascii\s*\(\s*substring|case\s+when\s*\(?\s*\d+\s*=\s*\d+|\bhaving\s+\d+\s*=\s*\d+",
            M,
            "asks yes/no questions of the database (`{m}`), a boolean blind technique",
            "以 `{m}` 向数据库做是非提问，属于布尔盲注",
            "CWE-89",
        ),
        _f(
            "encoded",
            r"(%27|%22|0x[0-9a-f]{6,}|char\s*\(\s*\d+)",
            M,
            "hides characters with encoding (`{m}`) to slip past filters",
            "用编码（`{m}`）隐藏字符以绕过过滤",
            "CWE-89",
        ),
        _f(
            "quote",
            r"['\"]",
            L,
            "contains a quote (`{m}`) that can break out of a string literal",
            "含有可跳出字符串字面量的引号（`{m}`）",
            "CWE-89",
        ),
    ),
    "xss": (
        _f(
            "takeover",
            r"(fetch\s*\([^)]*method\s*:\s*['\"]post|XMLHttpRequest)[^<]{0,400}?(password|passwd|admin|role|email)"
            r"|(password|passwd|admin|role|email)[^<]{0,200}?(fetch\s*\([^)]*method\s*:\s*['\"]post|XMLHttpRequest)",
            C,
            "sends authenticated requests from the victim's browser (`{m}`)",
            "在受害者浏览器中发送带身份的请求（`{m}`）",
            "CWE-79, CWE-352",
        ),
        _f(
            "exfil",
            r"fetch\s*\(\s*['\"`](https?:)?//|navigator\.sendBeacon|new\s+Image\s*\(\s*\)\.src\s*=|XMLHttpRequest",
            H,
            "sends data from the victim's page to another site (`{m}`)",
            "把受害者页面中的数据发往其他站点（`{m}`）",
            "CWE-79, CWE-200",
        ),
        _f(
            "steal",
            r"document\.cookie|localStorage|sessionStorage",
            H,
            "reads `{m}`, the victim's session data",
            "读取受害者的会话数据 `{m}`",
            "CWE-79",
        ),
        _f(
            "remote_script",
            r"<script[^>]+src\s*=|<(embed|object)[^>]+(src|data)\s*=\s*['\"]?(https?:)?//|<base[^>]+href\s*=",
            H,
            "loads a remote script (`{m}`) that gets full control of the page",
            "加载远程脚本（`{m}`），完全控制页面",
            "CWE-79, CWE-829",
        ),
        _f(
            "script",
            r"<\s*script",
            M,
            "contains a `{m}` tag that runs JavaScript",
            "含有会执行 JavaScript 的 `{m}` 标签",
            "CWE-79",
        ),
        _f(
            "handler",
            r"\bon[a-z]+\s*=",
            M,
            "uses the event handler `{m}` to run JavaScript without a script tag",
            "利用事件处理器 `{m}` 在没有 script 标签的情况下执行 JavaScript",
            "CWE-79",
        ),
        _f(
            "js_url",
            r"javascript\s*:|vbscript\s*:|data\s*:\s*text/html",
            M,
            "uses the `{m}` URL scheme to run script when followed",
            "使用 `{m}` 协议，在访问时执行脚本",
            "CWE-79, CWE-83",
        ),
        _f(
            "alert",
            r"\b(alert|prompt|confirm|eval)\s*[(`]|\(\s*(alert|prompt|confirm)\s*\)|\.(find|map|forEach)\s*\(\s*(alert|prompt|confirm)\b",
            M,
            "calls `{m}`, the usual proof that injected script runs",
            "调用 `{m}`，这是注入脚本可执行的常见证明",
            "CWE-79",
        ),
        _f(
            "encoded",
            r"&#x?[0-9a-f]+;|%3c|\\u00[0-9a-f]{2}|\\x3c",
            M,
            "encodes characters (`{m}`) to get past filters",
            "对字符进行编码（`{m}`）以绕过过滤",
            "CWE-79",
        ),
        _f(
            "tag",
            r"<\s*(iframe|svg|img|object|embed|meta|form|a|body|input|style|link|details|video|audio|marquee"
            r"|math|frame|frameset|bgsound|isindex|base|applet|textarea|select|keygen|template)\b",
            L,
            "injects the HTML tag `{m}`",
            "注入了 HTML 标签 `{m}`",
            "CWE-80",
        ),
    ),
    "bash": (
        _f(
            "revshell",
            r"/dev/(tcp|udp)/|\b(nc|ncat|netcat)\b.*\s-[ec]\s|mkfifo|socat\b.*exec|pty\.spawn"
            r"|fsockopen|TCPSocket\.(new|open)|\bztcp\b|/inet/tcp/"
            # any netcat-like client (rcat, pwncat, ...): a host and port, then an option handing it a
            # shell; every repeat is bounded, so hostile text costs linear time (benchmarks/findings_hostile.py)
            r"|\b(\d{1,3}(\.\d{1,3}){3}|[\w-]{1,63}(\.[\w-]{1,63}){1,8})[\s:]{1,3}\d{2,5}\b[^\n|;&]{0,200}?"
            r"\s--?[a-z-]{1,20}[\s=]{1,3}['\"]?(/usr)?(/bin/)?(ba|z|k|da|c|tc)?sh\b",
            C,
            "connects a shell to a remote host (`{m}`), a reverse shell",
            "把 Shell 连接到远程主机（`{m}`），即反弹 Shell",
            "CWE-506",
        ),
        _f(
            "payload",
            r"\b(msfvenom|msfconsole|meterpreter)\b",
            H,
            "builds or drives a Metasploit payload (`{m}`), as a rule a reverse shell for a target",
            "生成或操控 Metasploit 载荷（`{m}`），通常是给目标用的反弹 Shell",
            "CWE-506",
        ),
        _f(
            "attack_tool",
            r"\bsqlmap(\.py)?\s+-|\bhydra\s+-[lLpPC]|\b(mimikatz|evil-winrm|crackmapexec|netexec)\b"
            r"|\bsecretsdump(\.py)?\s",
            H,
            "runs the attack tool `{m}` (SQL injection, password guessing or credential theft against a host)",
            "运行攻击工具 `{m}`（对主机进行 SQL 注入、口令爆破或凭据窃取）",
            "T1110, T1003",
        ),
        _f(
            "destroy",
            r"rm\s+-[a-z]*r[a-z]*f?\s+(--no-preserve-root\s+)?/(\*|\s|$)|\bmkfs\b|dd\s+if=.*of=/dev/",
            C,
            "destroys data on the system (`{m}`)",
            "销毁系统上的数据（`{m}`）",
            "T1485",
        ),
        _f(
            "root_shell",
            r"\bsetuid\(0\)|posix_setuid\(0\)|/bin/(ba)?sh\s+-p\b|\bsudo\b[^\n]*\bexec\s+/bin/(ba)?sh",
            H,
            "escapes to a shell with raised privileges (`{m}`)",
            "借提升后的权限逃逸到 Shell（`{m}`）",
            "CWE-250",
        ),
        _f(
            "exfil",
            r"\b(RHOST|LFILE=file_to_send)\b|attacker\.com|\bfile_to_send\b|(curl|wget)\b[^\n]*(--data|-d\s+@|--post-file|-T\s)",
            H,
            "sends local data to a remote host it names (`{m}`)",
            "把本地数据发送到其指定的远程主机（`{m}`）",
            "CWE-200",
        ),
        _f(
            "setuid",
            r"chmod\s+([ugo]*\+s|[2467][0-7]{3})\b|install\s+-m\s*[2467][0-7]{3}|\bsetcap\b",
            H,
            "gives a file setuid/setgid rights or capabilities (`{m}`), a lasting way to root",
            "给文件加上 setuid/setgid 权限或 capabilities（`{m}`），留下提权入口",
            "CWE-250",
        ),
        _f(
            "shell_escape",
            r"(exec|system|execl|pcntl_exec|spawn|os\.execute|popen)\s*\(?\s*['\"]?(/bin/)?(ba|da|z|k)?sh\b"
            r"|:!\s*/bin/(ba)?sh|:shell\b|set\s+shell=|\bexec\s+(/bin/)?(ba)?sh\b|\b(sudo|nice|env|rlwrap|timeout|stdbuf)\s+(-\S+\s+)*/bin/(ba)?sh\b",
            H,
            "breaks out to an interactive shell through another program (`{m}`), the GTFOBins escape that turns an allowed command into a shell",
            "借其他程序跳出到交互式 Shell（`{m}`），即把被允许的命令变成 Shell 的 GTFOBins 逃逸",
            "CWE-78",
        ),
        _f(
            "priv_file",
            r"\bsudo\b[^\n]*(\$LFILE|file_to_(read|write|change))|(LFILE|file_to_(read|write|change))\b[^\n]*\n[^\n]*\bsudo\b",
            M,
            "reads or writes an arbitrary file with raised privileges (`{m}`)",
            "借提升后的权限读写任意文件（`{m}`）",
            "CWE-269",
        ),
        _f(
            "fetch_save",
            r"\b(wget|curl)\b[^\n|]*(-O|-o|--output)\s*\S+|\bURL=http",
            L,
            "downloads a file and saves it locally (`{m}`)",
            "下载文件并保存到本地（`{m}`）",
            "CWE-494",
        ),
        _f(
            "pipe_sh",
            r"(curl|wget)[^|]*\|\s*(sudo\s+)?(ba)?sh|base64\s+-d\s*\|\s*(ba)?sh",
            H,
            "pipes downloaded or decoded content straight into a shell (`{m}`)",
            "把下载或解码的内容直接交给 Shell 执行（`{m}`）",
            "CWE-494",
        ),
        _f(
            "persist",
            r"crontab|authorized_keys|/etc/rc\.local|systemctl\s+enable|useradd",
            H,
            "sets up persistence (`{m}`)",
            "建立持久化（`{m}`）",
            "T1053",
        ),
        _f(
            "antiforensics",
            r"history\s+-c|unset\s+HISTFILE|HISTSIZE=0|shred|/var/log",
            M,
            "tampers with history or logs (`{m}`)",
            "篡改命令历史或日志（`{m}`）",
            "CWE-778",
        ),
        _f(
            "perms",
            r"chmod\s+(-R\s+)?(777|666|[ao]\+w)",
            M,
            "makes files world-writable (`{m}`)",
            "把文件设为所有人可写（`{m}`）",
            "CWE-732",
        ),
        _f(
            "recon",
            r"/etc/passwd|/etc/shadow|sudo\s+-l|-perm\s+-4000|\bnmap\b|nc\s+-z",
            L,
            "performs reconnaissance (`{m}`)",
            "进行侦察（`{m}`）",
            "T1082",
        ),
    ),
    "python": (
        _f(
            "revshell",
            r"socket.*(dup2|pty\.spawn)",
            C,
            "wires a socket to a shell (`{m}`), a reverse shell",
            "把套接字接到 Shell 上（`{m}`），即反弹 Shell",
            "CWE-506",
        ),
        _f(
            "exec_payload",
            r"exec\s*\(\s*(base64|zlib|marshal|urllib|requests|codecs)",
            C,
            "executes a decoded or downloaded payload (`{m}`)",
            "执行解码或下载得到的载荷（`{m}`）",
            "CWE-506, CWE-94",
        ),
        _f(
            "encrypt_loop",
            r"(rglob|os\.walk).*encrypt",
            C,
            "encrypts files in a loop (`{m}`), ransomware behaviour",
            "循环加密文件（`{m}`），属于勒索软件行为",
            "T1486",
        ),
        _f(
            "shell_input",
            r"os\.system\s*\(|shell\s*=\s*True|os\.popen\s*\(",
            H,
            "runs a shell command (`{m}`) that can carry injected input",
            "执行 Shell 命令（`{m}`），输入可被注入",
            "CWE-78",
        ),
        _f(
            "eval",
            r"\b(eval|exec)\s*\(",
            H,
            "evaluates code at run time (`{m}`)",
            "在运行时执行代码（`{m}`）",
            "CWE-95",
        ),
        _f(
            "deserialize",
            r"(pickle|pkl|cPickle|dill|jsonpickle)\.(loads?|decode)\s*\(|from\s+pickle\s+import\s+loads"
            r"|yaml\.load\s*\((?![^)]*SafeLoader)|marshal\.loads",
            H,
            "deserializes data with `{m}`, which can run code",
            "用 `{m}` 反序列化数据，可能执行代码",
            "CWE-502",
        ),
        _f(
            "sql_format",
            r"\.execute(many)?\(\s*(f[\"']|[\"'][^\"']*[\"']\s*(%|\+|\.format\())"
            # the statement built first and executed by name: an SQL string filled in by % or
            # .format, or an f-string with a field (Bandit's B608)
            r"|(?i:\bf(\"(?=[^\"\n]*\{)[^\"\n]*|'(?=[^'\n]*\{)[^'\n]*)" + _SQL_STATEMENT + r")"
            r"|(?i:(\"[^\"\n]*" + _SQL_STATEMENT + r"[^\"\n]*\"|'[^'\n]*" + _SQL_STATEMENT + r"[^'\n]*')"
            r"\s*(%\s*[\w(]|\.format\())",
            H,
            "builds an SQL statement from values by string formatting (`{m}`)",
            "用字符串格式化把值拼进 SQL 语句（`{m}`）",
            "CWE-89",
        ),
        _f(
            "weak",
            r"hashlib\.(md5|sha1)|verify\s*=\s*False|random\.(random|randint|choice)"
            r"|\b(ARC4|DES|Blowfish)\.new\(|MODE_ECB\b|modes\.ECB\(",
            M,
            "uses a weak primitive (`{m}`)",
            "使用了弱安全原语（`{m}`）",
            "CWE-327",
        ),
        _f(
            "deserialize_more",
            r"\bmarshal\.loads?\(|\bdill\.(loads?|Unpickler)|\bshelve\.open\(|jsonpickle\.decode|\bcPickle\.loads?"
            r"|pickle\.Unpickler|read_pickle\(|torch\.load\((?![^)]*weights_only\s*=\s*True)",
            H,
            "deserializes data with `{m}`, which can run code hidden in the data",
            "用 `{m}` 反序列化数据，数据中暗藏的代码会被执行",
            "CWE-502",
        ),
        _f(
            "popen",
            r"\bos\.popen\d?\(\s*[a-z_]|\bcommands\.getoutput\(",
            H,
            "hands a computed string to a shell (`{m}`), so its contents run as commands",
            "把拼接出的字符串交给 Shell（`{m}`），其内容会被当作命令执行",
            "CWE-78",
        ),
        _f(
            "debug_server",
            r"\bdebug\s*=\s*True",
            M,
            "runs a web application in debug mode (`{m}`), whose interactive debugger executes code",
            "以调试模式运行 Web 应用（`{m}`），其交互式调试器可执行代码",
            "CWE-489",
        ),
        _f(
            "no_escape",
            r"autoescape\s*=\s*False|\bmark_safe\(|\bMarkup\(|\|\s*safe\b",
            M,
            "turns HTML escaping off (`{m}`), so user data can inject script",
            "关闭了 HTML 转义（`{m}`），用户数据可注入脚本",
            "CWE-79",
        ),
        _f(
            "weak_crypto_more",
            r"hashlib\.new\(\s*['\"](md2|md4|md5|sha1?)['\"]|import\s+(MD2|MD4|MD5|SHA|ARC2|ARC4|Blowfish|DES|XOR)\b"
            r"|PROTOCOL_(SSLv2|SSLv3|TLSv1)\b"
            r"|\b(ARC2|ARC4|Blowfish|DES|XOR|MD2|MD4)\.new\(|\bmodes\.ECB\b|\bECB\(",
            M,
            "relies on a broken cipher or hash (`{m}`)",
            "使用了已被攻破的加密或哈希算法（`{m}`）",
            "CWE-327",
        ),
        _f(
            "host_key",
            r"AutoAddPolicy|WarningPolicy|check_hostname\s*=\s*False",
            M,
            "accepts unknown SSH or TLS peers (`{m}`), so a man in the middle goes unnoticed",
            "接受未知的 SSH 或 TLS 对端（`{m}`），中间人攻击无法被发现",
            "CWE-295",
        ),
        _f(
            "world_writable",
            r"os\.chmod\([^)]*0o?[0-7]?[0-7]*[2367]\)|os\.chmod\([^)]*(0o777|0o666|stat\.S_IWOTH)",
            M,
            "makes a file writable by every user (`{m}`)",
            "把文件设为所有用户可写（`{m}`）",
            "CWE-732",
        ),
        _f(
            "insecure_temp",
            r"\bmktemp\(",
            L,
            "creates a temporary file name with `{m}`, which another user can claim first",
            "用 `{m}` 生成临时文件名，可被其他用户抢先占用",
            "CWE-377",
        ),
    ),
}

_SUBJECT = {
    "sqli": ("This SQL input", "这段 SQL 输入"),
    "xss": ("This HTML input", "这段 HTML 输入"),
    "bash": ("This shell command", "这条 Shell 命令"),
    "python": ("This Python code", "这段 Python 代码"),
}
_SOLUTION = {
    "sqli": (
        "Use parameterized queries, least-privilege DB accounts, and generic error pages.",
        "使用参数化查询、最小权限数据库账号，并返回通用错误页。",
    ),
    "xss": (
        "HTML-encode output, sanitize user HTML with an allow-list, and enforce a Content-Security-Policy.",
        "对输出做 HTML 编码，用白名单清洗用户 HTML，并启用 CSP。",
    ),
    "bash": (
        "Do not run it; investigate where it came from and block the hosts it contacts.",
        "不要运行；调查其来源并封禁其连接的主机。",
    ),
    "python": (
        "Remove or rewrite it: no shell, eval or unsafe deserialization of untrusted data.",
        "删除或重写：不对不可信数据使用 Shell、eval 或不安全的反序列化。",
    ),
}
_SAFE = {
    "sqli": (
        "shows no injection pattern: no quote breaking out of a string, tautology, UNION, stacked query, "
        "comment or delay.",
        "未见注入特征：没有跳出字符串的引号、恒真条件、UNION、堆叠查询、注释或延时。",
    ),
    "xss": (
        "contains no script, event handler, javascript: URL or active tag.",
        "不含脚本、事件处理器、javascript: 链接或活动标签。",
    ),
    "bash": (
        "runs nothing that downloads, persists, destroys or opens a remote shell.",
        "没有下载执行、持久化、破坏或反弹 Shell 的行为。",
    ),
    "python": (
        "calls no shell, eval/exec, unsafe deserialization or network shell.",
        "没有调用 Shell、eval/exec、不安全反序列化或网络 Shell。",
    ),
}


def find_features(text: str, category: str) -> list[tuple[Feature, str]]:
    """Matched features, most severe first, each with the matched text (shortened)."""
    from fwyy_ollama.dataset.split import decode

    decoded = decode(text)
    found: list[tuple[Feature, str]] = []
    for feature in FEATURES[category]:
        m = feature.pattern.search(text) or feature.pattern.search(decoded)
        if m:
            snippet = re.sub(r"\s+", " ", m.group(0)).strip().replace("`", "'")[:40]
            found.append((feature, snippet))
    found.sort(key=lambda fm: -fm[0].label.severity)
    return found


def _opening(text: str, category: str, zh: bool) -> str:
    """The analysis subject and, when the input's structure is clear, what it plainly does."""
    from fwyy_ollama.dataset.describe import describe

    subject = _SUBJECT[category][1 if zh else 0]
    what = describe(text, category, "zh" if zh else "en")
    if not what:
        return subject if zh else subject + " "
    return f"{subject}{what}，" if zh else f"{subject} {what}; it "


def explain(text: str, category: str, malicious: bool | Label, lang: str) -> Report:
    """A four-part report for an imported row. `malicious` may also be a label given by the file."""
    zh = lang == "zh"
    opening = _opening(text, category, zh)
    features = find_features(text, category) if malicious is not False else []
    if malicious is False or malicious is Label.SAFE:
        return Report(
            analysis=opening + _SAFE[category][1 if zh else 0],
            label=Label.SAFE,
            risk="无。" if zh else "None.",
            solution="无需处理；照常做输入校验和输出编码。"
            if zh
            else "No action; keep normal input validation and output encoding.",
        )
    if features:
        label = features[0][0].label if not isinstance(malicious, Label) else malicious
        parts = [(f.zh if zh else f.en).format(m=m) for f, m in features[:3]]
        cwes = sorted({c.strip() for f, _ in features[:3] for c in f.cwe.split(",")})
        if zh:
            analysis = opening + "；".join(parts) + "。"
            risk = f"被利用时可造成与上述手法对应的危害（{'、'.join(cwes)}）。"
        else:
            analysis = opening + "; ".join(parts) + "."
            risk = f"Exploitation as described above ({', '.join(cwes)})."
    else:
        label = malicious if isinstance(malicious, Label) else Label.MEDIUM
        if zh:
            analysis = opening + "结构异常，像是攻击载荷，但不属于已知的具体手法；在人工复核前按可疑处理。"
            risk = "可能的注入或恶意执行，具体影响待确认。"
        else:
            analysis = (
                opening + "looks like an attack payload but matches no specific known technique; "
                "treat it as suspicious until reviewed."
            )
            risk = "Possible injection or malicious execution; impact unconfirmed."
    return Report(analysis=analysis, label=label, risk=risk, solution=_SOLUTION[category][1 if zh else 0])
