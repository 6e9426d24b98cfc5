"""What users ask, in Chinese and English: generic requests and ones that name the input's kind.

The output language follows the instruction's language, so a model learns to answer in the
language it is asked in. Generic instructions are mixed in so the model does not rely on being
told what kind of input it is looking at (fwyy analyze sends a generic one).
"""

from __future__ import annotations

import random

GENERIC: dict[str, tuple[str, ...]] = {
    "en": (
        "Analyze the following input for security risks.",
        "Is this input malicious? Give your analysis, label, risk and solution.",
        "Act as a security analyst and assess the following.",
        "Review this for security issues.",
        "Classify the risk of the following input and explain why.",
        "What does this do, and is it dangerous?",
        "Triage this item from our security queue.",
        "Rate the following input: safe, low, medium, high or critical?",
    ),
    "zh": (
        "分析以下输入的安全风险。",
        "这段输入是恶意的吗？请给出分析、标签、风险和解决方案。",
        "请以安全分析师的身份评估以下内容。",
        "帮我审查一下这个有没有安全问题。",
        "判断下面输入的风险等级并说明理由。",
        "这是做什么的？危险吗？",
        "请研判这条安全告警中的内容。",
        "给下面的输入评级：安全、低危、中危、高危还是严重？",
    ),
}

BY_CATEGORY: dict[str, dict[str, tuple[str, ...]]] = {
    "sqli": {
        "en": (
            "Check this SQL input for injection.",
            "A user typed this into a login form. Is it a SQL injection attempt?",
            "This value reached our database query. Is it safe?",
            "Our WAF logged this query parameter. Assess it.",
            "Review this SQL for security problems.",
        ),
        "zh": (
            "检查这段 SQL 输入是否存在注入。",
            "有用户在登录框里输入了这个，是 SQL 注入吗？",
            "这个值被拼进了数据库查询，安全吗？",
            "WAF 记录了这个查询参数，请评估。",
            "审查这段 SQL 的安全性。",
        ),
    },
    "xss": {
        "en": (
            "Is this comment safe to render on our page?",
            "Check this user-supplied HTML for XSS.",
            "A visitor submitted this profile text. Any cross-site scripting risk?",
            "This string was reflected in a search results page. Is it an attack?",
            "Review this markup before we publish it.",
        ),
        "zh": (
            "这条评论可以直接渲染到页面上吗？",
            "检查这段用户提交的 HTML 是否有 XSS。",
            "访客提交了这段个人简介，有跨站脚本风险吗？",
            "这个字符串被回显在搜索结果页里，是攻击吗？",
            "发布前帮我审查这段标记。",
        ),
    },
    "bash": {
        "en": (
            "Is this shell command safe to run?",
            "Someone asked me to paste this into my terminal. Should I?",
            "We found this command in a server's bash history. What does it do?",
            "Review this Bash one-liner for security risks.",
            "A script from a forum contains this line. Is it dangerous?",
        ),
        "zh": (
            "这条 Shell 命令可以运行吗？",
            "有人让我把这个粘贴到终端里执行，我该照做吗？",
            "在服务器的 bash 历史里发现了这条命令，它做了什么？",
            "审查这条 Bash 命令的安全风险。",
            "论坛上的脚本里有这一行，危险吗？",
        ),
    },
    "python": {
        "en": (
            "Review this Python code for security problems.",
            "Is this Python snippet safe to execute?",
            "A pull request adds this code. Any security concerns?",
            "We found this Python in a package's setup script. Assess it.",
            "Audit this Python function.",
        ),
        "zh": (
            "审查这段 Python 代码的安全问题。",
            "这段 Python 代码可以放心运行吗？",
            "有个合并请求加了这段代码，有安全隐患吗？",
            "在某个包的安装脚本里发现了这段 Python，请评估。",
            "审计一下这个 Python 函数。",
        ),
    },
}


def pick_instruction(category: str, lang: str, rng: random.Random) -> str:
    """A category-specific instruction two times in three, else a generic one."""
    if rng.random() < 2 / 3:
        return rng.choice(BY_CATEGORY[category][lang])
    return rng.choice(GENERIC[lang])
